/** Labeling routes of the pachls REST API (see jupyterlab_pachls/openapi.yaml). */
import { Answer, Body, ICommit, query, requestAPI, seg } from '../api';
import { components, operations } from '../api/types';

type Schemas = components['schemas'];

/** The Label Studio the server runs (managed) or talks to (external). */
export type ILabelStudioStatus = Schemas['LabelStudioStatus'];
export type LabelStudioState = ILabelStudioStatus['state'];

/** A labeling session: a data source pinned to a commit, a label target, a Label Studio project. */
export type ISession = Schemas['LabelingSession'];
export type ISessionDetail = Answer<'getLabelingSession'>;
export type IDataStatus = ISessionDetail['data_status'];

/** `GET /labeling`. */
export type ILabelingStatus = Answer<'labelingStatus'>;
export type ITemplate = ILabelingStatus['templates'][number];

/** Label files a commit would add, modify and delete, who created and who changed them. */
export type IPending = Answer<'pendingLabels'>;

/** Body of `POST /labeling/sessions`. */
export type ISessionRequest = Body<'createLabelingSession'>;

/** Every label commit that changed the label of a file, newest first. */
export type IBlame = Answer<'blameLabel'>;
export type IBlameEntry = IBlame['entries'][number];

/** Annotation-level changes between two label commits (`GET /labels/diff`). */
export type ILabelDiff = Answer<'diffLabels'>;
export type ILabelChange = ILabelDiff['changes'][number];

/**
 * What a resync from `ref` would do (`GET .../resync?ref=`); nothing is touched by it.
 * Its `commit` is what `ref` resolved to: the confirm names it, so a moved branch is refused.
 */
export type IResyncPreview = Schemas['ResyncPreview'];
export type IResyncResult = Answer<'resyncLabels'>;

/** What happens to the Label Studio project when its session is deleted. */
export type ProjectFate = NonNullable<
  NonNullable<operations['deleteLabelingSession']['parameters']['query']>['project']
>;
export type IDeleteSessionResult = Answer<'deleteLabelingSession'>;

export type ILoginCredentials = Answer<'labelStudioLogin'>;

/** Label Studio's state, the templates and every session. */
export function getLabeling(): Promise<ILabelingStatus> {
  return requestAPI<ILabelingStatus>('labeling');
}

/** Start Label Studio now (it also starts on first use). */
export function startLabelStudio(): Promise<ILabelStudioStatus> {
  return requestAPI<ILabelStudioStatus>('labeling', { method: 'POST', body: {} });
}

/** Create (or reopen) a labeling session. */
export function createSession(request: ISessionRequest): Promise<ISession> {
  return requestAPI<ISession>('labeling/sessions', { method: 'POST', body: request });
}

/** One session with how far its data is behind the branch head. */
export function getSession(id: string): Promise<ISessionDetail> {
  return requestAPI<ISessionDetail>(`labeling/sessions/${seg(id)}`);
}

/** What a label commit of the session would contain. */
export function getPending(id: string): Promise<IPending> {
  return requestAPI<IPending>(`labeling/sessions/${seg(id)}/pending`);
}

/** ONE label commit of every pending annotation. */
export function commitLabels(id: string, message: string): Promise<ICommit> {
  return requestAPI<ICommit>(`labeling/sessions/${seg(id)}/commit`, {
    method: 'POST',
    body: { message }
  });
}

/** Pin the data branch head and import the new files as tasks. */
export function importNewData(id: string): Promise<ISession> {
  return requestAPI<ISession>(`labeling/sessions/${seg(id)}/import`, {
    method: 'POST',
    body: {}
  });
}

/** What a resync from `ref` (a branch or commit of the labels repo) would restore, overwrite and remove. */
export function previewResync(id: string, ref: string): Promise<IResyncPreview> {
  return requestAPI<IResyncPreview>(`labeling/sessions/${seg(id)}/resync${query({ ref })}`, {
    cache: 'no-store'
  });
}

/** Load the label files of the previewed commit back into Label Studio (after the user confirmed). */
export function resyncLabels(id: string, ref: string, commit: string): Promise<IResyncResult> {
  return requestAPI<IResyncResult>(`labeling/sessions/${seg(id)}/resync`, {
    method: 'POST',
    body: { ref, commit, confirm: true }
  });
}

/**
 * Delete a session; its Label Studio project is kept or deleted. Committed
 * label files are never touched. Pending labels: 409 `pending_labels` unless `force`.
 */
export function deleteSession(
  id: string,
  options: { project: ProjectFate; force?: boolean }
): Promise<IDeleteSessionResult> {
  return requestAPI<IDeleteSessionResult>(
    `labeling/sessions/${seg(id)}${query({
      project: options.project,
      force: options.force ? 'true' : undefined
    })}`,
    { method: 'DELETE' }
  );
}

/** Annotation-level changes between two label commits (`from` default: parent of `to`). */
export function diffLabels(repo: string, to: string, from?: string | null): Promise<ILabelDiff> {
  return requestAPI<ILabelDiff>(`labels/diff${query({ repo, to, from })}`);
}

/** The current Jupyter user's own Label Studio login (only to post it to Label Studio; never kept). */
export function getLogin(): Promise<ILoginCredentials> {
  return requestAPI<ILoginCredentials>('labeling/login', { cache: 'no-store' });
}

/** The end of Label Studio's log. */
export function getLabelStudioLog(): Promise<Answer<'labelStudioLog'>> {
  return requestAPI<Answer<'labelStudioLog'>>('labeling/log');
}

/** Every label commit that changed the label of `path`, newest first. */
export function getBlame(repo: string, ref: string, path: string): Promise<IBlame> {
  return requestAPI<IBlame>(`labels/blame${query({ repo, ref, path })}`);
}

/**
 * The same for a file seen in any mount of labeled data (`path` inside the
 * mount): the server finds the labeling session and its labels branch.
 */
export function getBlameInMount(mount: string, path: string): Promise<IBlame> {
  return requestAPI<IBlame>(`labels/blame${query({ mount, path })}`);
}

/** The data paths that have labels in `repo@ref` (sorted), from the label rows. */
export async function labeledPaths(repo: string, ref: string): Promise<string[]> {
  const { rows } = await requestAPI<Answer<'labelRows'>>(`labels/rows${query({ repo, ref })}`);
  const paths = new Set<string>();
  for (const row of rows as Array<{ data_path?: string }>) {
    if (row.data_path) {
      paths.add(row.data_path);
    }
  }
  return [...paths].sort();
}
