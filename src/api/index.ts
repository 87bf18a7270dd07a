import { ServerConnection } from '@jupyterlab/services';

import { requestAPI, requestAPIResponse } from './request';
import {
  BackendRequest,
  IBackendConfig,
  IBranch,
  IChanges,
  ICommit,
  ICommitPage,
  ICommitResult,
  IDiff,
  IIdentity,
  IMountRequest,
  IMountsResponse,
  IMountStatus,
  IPanel,
  IProvenance,
  IRepo
} from './models';

export * from './request';
export * from './models';

/**
 * One path segment: `project/repo` becomes `project%2Frepo`, `master^2`
 * becomes `master%5E2`.
 */
export function seg(value: string): string {
  return encodeURIComponent(value);
}

/** A query string from the defined values, with a leading `?` (or ''). */
export function query(params: {
  [key: string]: string | number | boolean | null | undefined;
}): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === '') {
      continue;
    }
    parts.push(`${encodeURIComponent(key)}=${encodeURIComponent(String(value))}`);
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

/** Who commits are recorded as. */
export function getIdentity(): Promise<IIdentity> {
  return requestAPI<IIdentity>('identity', { cache: 'no-store' });
}

/** Record commits as `name <email>` from now on (saved for this Jupyter user). */
export function putIdentity(name: string, email: string): Promise<IIdentity> {
  return requestAPI<IIdentity>('identity', { method: 'PUT', body: { name, email } });
}

/** The backend configuration in use. */
export function getBackend(): Promise<IBackendConfig> {
  return requestAPI<IBackendConfig>('backend');
}

/** Switch between the embedded store and a Pachyderm cluster. */
export function putBackend(body: BackendRequest): Promise<IBackendConfig> {
  return requestAPI<IBackendConfig>('backend', { method: 'PUT', body });
}

/**
 * A GET whose last answer is kept with its ETag: the request sends it in
 * `If-None-Match`, and while the server answers 304 (nothing changed) the
 * kept answer is returned.
 */
function keptByETag<T>(endpoint: string): {
  get: (settings?: ServerConnection.ISettings) => Promise<T>;
  clear: () => void;
} {
  let kept: { etag: string; data: T } | null = null;
  return {
    get: async settings => {
      const headers: { [key: string]: string } = {};
      if (kept) {
        headers['If-None-Match'] = kept.etag;
      }
      const { data, response } = await requestAPIResponse<T>(endpoint, { headers }, settings);
      if (response.status === 304 && kept) {
        return kept.data;
      }
      const etag = response.headers.get('ETag');
      kept = etag && data ? { etag, data } : null;
      return data as T;
    },
    clear: () => {
      kept = null;
    }
  };
}

const panelRequest = keptByETag<IPanel>('panel');

/**
 * What the panel shows (health, repos, mounts) in the one request it polls;
 * a part that failed is null and its error is in `errors`. While nothing
 * changed the server answers 304 and the kept answer is returned.
 */
export function getPanel(settings?: ServerConnection.ISettings): Promise<IPanel> {
  return panelRequest.get(settings);
}

/** Forget the kept panel answer (tests). */
export function clearPanelCache(): void {
  panelRequest.clear();
}

/** Create an empty repo. */
export function createRepo(name: string, description = ''): Promise<IRepo> {
  return requestAPI<IRepo>('repos', {
    method: 'POST',
    body: description ? { name, description } : { name }
  });
}

/** One page of the history of a branch (with `path`: of one file), newest first. */
export function listCommits(
  repo: string,
  branch: string,
  options: { limit?: number; before?: string | null; path?: string | null } = {}
): Promise<ICommitPage> {
  return requestAPI<ICommitPage>(
    `repos/${seg(repo)}/branches/${seg(branch)}/commits${query({
      limit: options.limit,
      before: options.before,
      path: options.path
    })}`
  );
}

/** One commit (ref: branch, commit id or branch^N). */
export function inspectCommit(repo: string, ref: string): Promise<ICommit> {
  return requestAPI<ICommit>(`repos/${seg(repo)}/commits/${seg(ref)}`);
}

/** Files added, modified and deleted between two commits (`from` default: parent of `to`). */
export function diffCommits(
  repo: string,
  to: string,
  from?: string | null
): Promise<IDiff> {
  return requestAPI<IDiff>(`repos/${seg(repo)}/diff${query({ to, from })}`);
}

/** Move a branch head (rollback); compare-and-set with `expectedHead`. */
export function moveBranchHead(
  repo: string,
  branch: string,
  commit: string,
  expectedHead?: string | null,
  reason = 'rollback'
): Promise<IBranch> {
  const body: { [key: string]: unknown } = { commit, reason };
  if (expectedHead) {
    body.expected_head = expectedHead;
  }
  return requestAPI<IBranch>(
    `repos/${seg(repo)}/branches/${seg(branch)}/head`,
    { method: 'PUT', body }
  );
}

/** Every mount with its status. */
export function listMounts(): Promise<IMountsResponse> {
  return requestAPI<IMountsResponse>('mounts');
}

/** Mount `repo@branch` (or a commit) read-only or read-write. */
export function createMount(request: IMountRequest): Promise<IMountStatus> {
  return requestAPI<IMountStatus>('mounts', { method: 'POST', body: request });
}

/** Unmount; staged changes are dropped only with `discard`. */
export async function deleteMount(name: string, discard = false): Promise<void> {
  await requestAPI<void>(`mounts/${seg(name)}${query({ discard: discard ? 'true' : undefined })}`, {
    method: 'DELETE'
  });
}

/**
 * Move a mount to its branch head. Where the branch changed a path at which
 * the mount holds a local file its ignore rules keep out of commits, the
 * server answers 409 `would_overwrite` naming them, unless `overwrite`: true,
 * or the paths agreed to (any other file found in the way: 409 again).
 */
export function refreshMount(
  name: string,
  overwrite: boolean | string[] = false
): Promise<IMountStatus> {
  return requestAPI<IMountStatus>(`mounts/${seg(name)}/refresh`, {
    method: 'POST',
    body: { overwrite }
  });
}

/**
 * Move a branch mount to its branch's head wherever it went (a rollback
 * included), keeping or dropping its staged changes (`overwrite` as in
 * refreshMount).
 */
export function followMount(
  name: string,
  pending: 'keep' | 'drop',
  overwrite: boolean | string[] = false
): Promise<IMountStatus> {
  return requestAPI<IMountStatus>(`mounts/${seg(name)}/follow`, {
    method: 'POST',
    body: { pending, overwrite }
  });
}

/** Staged changes of a mount. */
export function mountChanges(name: string): Promise<IChanges> {
  return requestAPI<IChanges>(`mounts/${seg(name)}/changes`);
}

/**
 * Land the staged changes of a read-write mount as one commit: every one, or
 * only those at `paths` (the others stay pending).
 */
export function commitMount(
  name: string,
  message: string,
  provenance?: Array<string | IProvenance>,
  paths?: string[]
): Promise<ICommitResult> {
  const body: { [key: string]: unknown } = { message };
  if (provenance && provenance.length) {
    body.provenance = provenance;
  }
  if (paths) {
    body.paths = paths;
  }
  return requestAPI<ICommitResult>(`mounts/${seg(name)}/commit`, {
    method: 'POST',
    body
  });
}

/** Drop every staged change of a mount. */
export function discardMount(name: string): Promise<IMountStatus> {
  return requestAPI<IMountStatus>(`mounts/${seg(name)}/discard`, {
    method: 'POST',
    body: {}
  });
}
