/** Labeling routes of the pachls REST API (see jupyterlab_pachls/openapi.yaml). */
import { ICommit } from '../api/types';
import { query, requestAPI, seg } from '../api';

export type LabelStudioState = 'stopped' | 'starting' | 'running' | 'failed';

/** The Label Studio the server runs (managed) or talks to (external). */
export interface ILabelStudioStatus {
  mode: 'managed' | 'external';
  state: LabelStudioState;
  url: string | null;
  message: string;
  started_seconds: number | null;
  restarts: number;
  log: string | null;
}

export interface ITemplate {
  name: string;
  title: string;
  data_key: string;
}

/** A labeling session: a data source pinned to a commit, a label target, a Label Studio project. */
export interface ISession {
  id: string;
  title: string;
  data_repo: string;
  data_branch: string;
  data_commit: string;
  glob: string;
  labels_repo: string;
  labels_branch: string;
  project_id: number;
  data_mount: string;
  labels_mount: string;
  data_key: string;
  created_by: string;
  created: number;
  tasks: number;
}

export interface IDataStatus {
  behind: number;
  head: string | null;
  data_commit: string;
}

export interface ISessionDetail extends ISession {
  data_status: IDataStatus;
}

/** `GET /labeling`. */
export interface ILabelingStatus {
  label_studio: ILabelStudioStatus | null;
  templates: ITemplate[];
  sessions: ISession[];
}

/** Label files a commit would add, modify and delete. */
export interface IPending {
  count: number;
  added: string[];
  modified: string[];
  deleted: string[];
  /** Who created the annotations. */
  annotators: string[];
  /** Who made the new or changed ones (older servers: absent). */
  changed_by?: string[];
  data_commits: string[];
}

/** Body of `POST /labeling/sessions`. */
export interface ISessionRequest {
  data: string;
  labels: string;
  glob?: string;
  template?: string;
  classes?: string[];
  xml?: string;
}

export interface IBlameEntry {
  commit: string;
  time: string | null;
  author: string;
  message: string;
  change: 'added' | 'modified' | 'deleted';
  /** Who created the annotations of the label file. */
  annotators: string[];
  /** Who changed the label in this commit (older servers: absent). */
  changed_by?: string[];
  labels: string[];
  data_commit: string | null;
  provenance: unknown[];
}

export interface IBlame {
  repo: string;
  ref: string;
  path: string;
  entries: IBlameEntry[];
}

/** One annotation that changed between two label commits (`GET /labels/diff`). */
export interface ILabelChange {
  /** The data file. */
  path: string;
  annotation: number;
  change: 'added' | 'modified' | 'deleted';
  /** Who created the annotation (older servers name one `annotator`). */
  annotators?: string[];
  annotator?: string | null;
  /** Who changed it between the two commits. */
  changed_by?: string[];
  before: string[];
  after: string[];
}

export interface ILabelDiff {
  repo: string;
  from: string | null;
  to: string;
  changes: ILabelChange[];
}

/** What a resync from `ref` would do (`GET .../resync?ref=`); nothing is touched by it. */
export interface IResyncPreview {
  ref: string;
  /** The commit `ref` resolved to: the confirm names it, so a moved branch is refused. */
  commit: string;
  /** Annotations recreated from the label files. */
  restore: number;
  /** Annotations already equal to their label file. */
  unchanged: number;
  /** Data paths whose current annotations would be replaced. */
  overwrite: string[];
  /** Data paths whose current annotations would be deleted. */
  remove: string[];
  /** Of those, the ones holding annotations that were never committed (they would be lost). */
  uncommitted: string[];
}

export interface IResyncResult {
  restored: number;
  removed: number;
  commit: string;
}

/** What happens to the Label Studio project when its session is deleted. */
export type ProjectFate = 'keep' | 'delete';

export interface IDeleteSessionResult {
  deleted: string;
  project: 'kept' | 'deleted';
  project_id: number;
}

export interface ILoginCredentials {
  email: string;
  password: string;
}

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
export function getLabelStudioLog(): Promise<{ log: string }> {
  return requestAPI<{ log: string }>('labeling/log');
}

/** Every label commit that changed the label of `path`, newest first. */
export function getBlame(repo: string, ref: string, path: string): Promise<IBlame> {
  return requestAPI<IBlame>(`labels/blame${query({ repo, ref, path })}`);
}
