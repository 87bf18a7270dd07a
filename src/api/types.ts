/** JSON shapes answered by the pachls REST API (see jupyterlab_pachls/openapi.yaml). */

export interface IProvenance {
  repo: string;
  commit: string;
  branch: string | null;
}

export interface ICommit {
  id: string;
  repo: string;
  branch: string | null;
  parent: string | null;
  message: string;
  author: string;
  started: string | null;
  finished: string | null;
  provenance: IProvenance[];
  origin: string;
  size_bytes: number;
  n_files: number;
  metadata?: { [key: string]: string };
}

export interface IBranch {
  repo: string;
  name: string;
  head: ICommit | null;
}

export interface IRepo {
  name: string;
  project: string;
  description: string;
  created: string | null;
  size_bytes: number;
  branches: IBranch[];
}

export interface IBackendInfo {
  kind: string | null;
  address: string | null;
}

export interface IReposResponse {
  backend: IBackendInfo;
  repos: IRepo[];
}

export interface IHealth {
  backend: IBackendInfo & { connected: boolean; error: string | null };
  store_dir: string;
  fuse: { available: boolean; reason?: string };
}

/** `GET/PUT /backend`. The auth token is never returned. */
export interface IBackendConfig {
  kind: 'local' | 'pachyderm' | null;
  address: string | null;
  connected: boolean;
  error: string | null;
  pachd_address: string | null;
  auth_token_set: boolean;
  store_dir: string;
  saved_in: string;
}

/** Body of `PUT /backend`. */
export type BackendRequest =
  | { kind: 'local' }
  | { kind: 'pachyderm'; pachd_address?: string; auth_token?: string | null };

export interface ICommitPage {
  commits: ICommit[];
  next: string | null;
}

export type ChangeKind = 'added' | 'modified' | 'deleted';

export interface IFileInfo {
  path: string;
  type: 'file' | 'dir';
  size: number;
  hash: string | null;
  committed: string | null;
}

export interface IFileChange {
  path: string;
  change: ChangeKind;
  old: IFileInfo | null;
  new: IFileInfo | null;
}

export interface IDiff {
  from: string | null;
  to: string;
  path: string;
  changes: IFileChange[];
}

export type MountMode = 'ro' | 'rw';
export type MountState =
  | 'mounting'
  | 'mounted'
  | 'committing'
  | 'error'
  | 'unmounted';

export interface IMountStatus {
  name: string;
  repo: string;
  branch: string | null;
  commit: string | null;
  base: string | null;
  mode: MountMode;
  presentation: 'fuse' | 'no-fuse';
  state: MountState;
  message: string;
  behind: number;
  /** The branch was moved (rolled back) below the mount's base; refresh to follow it. */
  diverged?: boolean;
  pending: number;
  mountpoint: string;
}

export interface IMountsResponse {
  mount_dir: string;
  fuse: boolean;
  mounts: IMountStatus[];
}

export interface IChange {
  path: string;
  change: ChangeKind;
  size: number;
  old_size: number | null;
}

export interface IChanges {
  name: string;
  base: string | null;
  changes: IChange[];
  unsupported: string[];
  counts: { added: number; modified: number; deleted: number };
}

export interface ICommitResult {
  commit: ICommit;
  mount: IMountStatus;
}

export interface IMountRequest {
  repo: string;
  branch?: string;
  ref?: string;
  mode?: MountMode;
  name?: string;
}

/** Where the author of commits comes from (`GET /identity`). */
export type IdentitySource = 'jupyter' | 'configured' | 'git';

/**
 * Who commits, rollbacks and label rounds are recorded as. `required` is true
 * when nothing is known: routes that write history then answer 409
 * `identity_required`.
 */
export interface IIdentity {
  name: string | null;
  email: string | null;
  source: IdentitySource | null;
  required: boolean;
}
