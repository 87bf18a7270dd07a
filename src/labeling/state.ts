/**
 * Pure pieces of the labeling UI: labels, form validation, the auto-login
 * request sequence, and where a file of the file browser sits in a session.
 * Kept apart from widgets so unit tests can run them without a browser.
 */
import { TranslationBundle } from '@jupyterlab/translation';

import { PachlsApiError } from '../api/request';
import {
  ILabelChange,
  ILabelStudioStatus,
  ILoginCredentials,
  IPending,
  IResyncPreview,
  ISession,
  ISessionRequest,
  ProjectFate
} from './api';

/** Where Label Studio is served, below the server's base URL. */
export const LABEL_STUDIO_PREFIX = 'pachls/labelstudio';

/** `{base}/pachls/labelstudio` without a trailing slash. */
export function labelStudioPrefix(baseUrl: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/${LABEL_STUDIO_PREFIX}`;
}

/** The page of a Label Studio project (its task list; labeling starts from there). */
export function projectUrl(baseUrl: string, projectId: number): string {
  return `${labelStudioPrefix(baseUrl)}/projects/${projectId}/data`;
}

/** The text of the commit button: "Commit labels (N pending)" ("Commit labels" while unknown). */
export function commitButtonText(trans: TranslationBundle, count: number | null | undefined): string {
  if (count === null || count === undefined) {
    return trans.__('Commit labels');
  }
  return trans.__('Commit labels (%1 pending)', count);
}

/** Every pending label file with its change kind, for a ChangeList. */
export function pendingChanges(
  pending: IPending
): Array<{ path: string; change: 'added' | 'modified' | 'deleted' }> {
  return [
    ...pending.added.map(path => ({ path, change: 'added' as const })),
    ...pending.modified.map(path => ({ path, change: 'modified' as const })),
    ...pending.deleted.map(path => ({ path, change: 'deleted' as const }))
  ];
}

/** True for the server's "nothing to commit" answer (400 on a label commit). */
export function isNothingToCommit(reason: unknown): boolean {
  return (
    reason instanceof PachlsApiError &&
    reason.status === 400 &&
    /nothing to commit/i.test(reason.message)
  );
}

/** One line about Label Studio: stopped, starting (N s), running, failed: message. */
export function labelStudioText(
  trans: TranslationBundle,
  status: ILabelStudioStatus | null | undefined
): string {
  if (!status) {
    return trans.__('Label Studio is not configured');
  }
  const where = status.mode === 'external' ? trans.__(' (team server)') : '';
  switch (status.state) {
    case 'running':
      return trans.__('Label Studio is running%1', where);
    case 'starting':
      return status.started_seconds !== null && status.started_seconds !== undefined
        ? trans.__('Label Studio is starting… %1 s', Math.round(status.started_seconds))
        : trans.__('Label Studio is starting…');
    case 'failed':
      return status.message
        ? trans.__('Label Studio failed: %1', status.message)
        : trans.__('Label Studio failed');
    case 'stopped':
    default:
      return trans.__('Label Studio is stopped (it starts when a session needs it)');
  }
}

/** "data N commits behind" (empty when up to date). */
export function behindText(trans: TranslationBundle, behind: number | null | undefined): string {
  if (!behind) {
    return '';
  }
  return trans._n('data %1 commit behind', 'data %1 commits behind', behind);
}

/* ----------------------------------------------------------------------- */
/* Authorship                                                               */
/* ----------------------------------------------------------------------- */

/** Who created the annotations of a blame row or label change (old servers name one `annotator`). */
export function labeledBy(entry: { annotators?: string[]; annotator?: string | null }): string[] {
  if (entry.annotators) {
    return entry.annotators;
  }
  return entry.annotator ? [entry.annotator] : [];
}

/** Who changed the label in that commit. */
export function changedBy(entry: { changed_by?: string[] }): string[] {
  return entry.changed_by ?? [];
}

/** A label change as "cat → bird" ("∅" for no label). */
export function labelChangeText(change: Pick<ILabelChange, 'before' | 'after'>): string {
  const side = (values: string[]) => (values.length ? values.join(', ') : '∅');
  return `${side(change.before)} → ${side(change.after)}`;
}

/** True for a label commit (its metadata has `pachls.labels`). */
export function isLabelCommit(metadata: { [key: string]: string } | undefined): boolean {
  return !!metadata && 'pachls.labels' in metadata;
}

/* ----------------------------------------------------------------------- */
/* Resync                                                                   */
/* ----------------------------------------------------------------------- */

/** The data paths a resync would overwrite or remove, for a ChangeList. */
export function resyncChanges(
  preview: IResyncPreview
): Array<{ path: string; change: 'modified' | 'deleted' }> {
  return [
    ...preview.overwrite.map(path => ({ path, change: 'modified' as const })),
    ...preview.remove.map(path => ({ path, change: 'deleted' as const }))
  ];
}

/** One sentence of what a resync would do. */
export function resyncSummary(trans: TranslationBundle, preview: IResyncPreview): string {
  const restore = trans._n(
    'Restores %1 annotation from the label files of %2',
    'Restores %1 annotations from the label files of %2',
    preview.restore,
    `${preview.ref} (${preview.commit.slice(0, 8)})`
  );
  const replaced = trans.__(
    '%1 files overwritten, %2 removed, %3 annotations unchanged.',
    preview.overwrite.length,
    preview.remove.length,
    preview.unchanged
  );
  return `${restore}; ${replaced}`;
}

/** The warning about annotations that were never committed ('' when none would be lost). */
export function uncommittedWarning(trans: TranslationBundle, preview: IResyncPreview): string {
  const n = preview.uncommitted.length;
  if (n === 0) {
    return '';
  }
  return trans._n(
    '%1 file has annotations that were never committed. A resync replaces them: commit them first to keep them in history.',
    '%1 files have annotations that were never committed. A resync replaces them: commit them first to keep them in history.',
    n
  );
}

/** The confirm button: "Resync (overwrite 2, remove 1)", "Resync" when nothing is replaced. */
export function resyncButtonText(trans: TranslationBundle, preview: IResyncPreview): string {
  if (preview.overwrite.length === 0 && preview.remove.length === 0) {
    return trans.__('Resync');
  }
  return trans.__('Resync (overwrite %1, remove %2)', preview.overwrite.length, preview.remove.length);
}

/** The preview a 409 `confirmation_required` carries in its details, if any. */
export function previewOf(reason: unknown): IResyncPreview | null {
  if (!(reason instanceof PachlsApiError) || reason.error !== 'confirmation_required') {
    return null;
  }
  const d = reason.details as Partial<IResyncPreview>;
  if (typeof d.commit !== 'string' || !Array.isArray(d.overwrite) || !Array.isArray(d.remove)) {
    return null;
  }
  return {
    ref: String(d.ref ?? ''),
    commit: d.commit,
    restore: Number(d.restore ?? 0),
    unchanged: Number(d.unchanged ?? 0),
    overwrite: d.overwrite,
    remove: d.remove,
    uncommitted: Array.isArray(d.uncommitted) ? d.uncommitted : []
  };
}

/* ----------------------------------------------------------------------- */
/* Deleting a session                                                       */
/* ----------------------------------------------------------------------- */

/** How many labels a 409 `pending_labels` says are not committed (null for other errors). */
export function pendingLabelsOf(reason: unknown): number | null {
  if (!(reason instanceof PachlsApiError) || reason.error !== 'pending_labels') {
    return null;
  }
  const n = Number(reason.details.pending);
  return Number.isFinite(n) ? n : 0;
}

/** What deleting a session does, in plain words, for the chosen fate of its project. */
export function deleteSessionText(
  trans: TranslationBundle,
  session: ISession,
  project: ProjectFate
): string[] {
  const labels = `${session.labels_repo}@${session.labels_branch}`;
  return [
    trans.__('The session leaves this panel and its labeling tab closes.'),
    project === 'keep'
      ? trans.__(
          'Label Studio project %1 is kept with its tasks and annotations; you can still open it in Label Studio.',
          session.project_id
        )
      : trans.__(
          'Label Studio project %1 is deleted with its tasks and every annotation in it.',
          session.project_id
        ),
    trans.__('Labels already committed to %1 stay as they are, with their history.', labels)
  ];
}

/* ----------------------------------------------------------------------- */
/* New session form                                                        */
/* ----------------------------------------------------------------------- */

export const CUSTOM_XML = 'custom';

export interface ISessionForm {
  /** `repo@branch` of the data. */
  data: string;
  /** Optional glob inside the data, e.g. `/cats/*.png`. */
  glob: string;
  /** `repo@branch` the labels are committed to. */
  labels: string;
  /** A template name, or `custom` for own XML. */
  template: string;
  /** Comma-separated classes (templates). */
  classes: string;
  /** Label Studio XML (custom). */
  xml: string;
  /** A training format each label commit also carries in /exports/<format>/ ('' for none). */
  exportFormat: string;
}

export const initialSessionForm: ISessionForm = {
  data: '',
  glob: '',
  labels: 'labels@master',
  template: 'image-classification',
  classes: '',
  xml: '',
  exportFormat: ''
};

export type SessionFormErrors = Partial<Record<keyof ISessionForm, string>>;

/** Classes from "cat, dog,, bird" -> ["cat", "dog", "bird"]. */
export function parseClasses(text: string): string[] {
  return text
    .split(',')
    .map(c => c.trim())
    .filter(c => c.length > 0);
}

const ADDRESS = /^([A-Za-z0-9_.-]+\/)?[A-Za-z0-9_.-]+@[A-Za-z0-9_.-]+$/;

/** What is wrong with the form, per field (empty: nothing). XML itself is checked by the server. */
export function validateSessionForm(
  trans: TranslationBundle,
  form: ISessionForm
): SessionFormErrors {
  const errors: SessionFormErrors = {};
  const data = form.data.trim();
  if (!data) {
    errors.data = trans.__('Choose the data to label (repo@branch).');
  } else if (!ADDRESS.test(data)) {
    errors.data = trans.__('Write the data as repo@branch, e.g. images@master.');
  }
  const labels = form.labels.trim();
  if (!labels) {
    errors.labels = trans.__('Name where labels are committed (repo@branch).');
  } else if (!ADDRESS.test(labels)) {
    errors.labels = trans.__('Write the label target as repo@branch, e.g. labels@master.');
  }
  const glob = form.glob.trim();
  if (glob && !glob.startsWith('/')) {
    errors.glob = trans.__('A path glob starts with /, e.g. /cats/*.png.');
  }
  if (form.template === CUSTOM_XML) {
    if (!form.xml.trim()) {
      errors.xml = trans.__('Paste a Label Studio labeling config (<View>…</View>).');
    }
  } else {
    const classes = parseClasses(form.classes);
    if (classes.length === 0) {
      errors.classes = trans.__('Give at least one class, separated by commas.');
    } else if (new Set(classes).size !== classes.length) {
      errors.classes = trans.__('Each class can be given once.');
    }
  }
  return errors;
}

/** The request body of a valid form. */
export function sessionRequest(form: ISessionForm): ISessionRequest {
  const request: ISessionRequest = {
    data: form.data.trim(),
    labels: form.labels.trim()
  };
  const glob = form.glob.trim();
  if (glob) {
    request.glob = glob;
  }
  if (form.template === CUSTOM_XML) {
    request.xml = form.xml;
  } else {
    request.template = form.template;
    request.classes = parseClasses(form.classes);
  }
  if (form.exportFormat) {
    request.export_format = form.exportFormat;
  }
  return request;
}

/* ----------------------------------------------------------------------- */
/* Auto-login                                                              */
/* ----------------------------------------------------------------------- */

/** Raised while Label Studio is still starting (the proxy answers 503). */
export class LabelStudioStartingError extends Error {
  constructor() {
    super('Label Studio is starting');
    this.name = 'LabelStudioStartingError';
  }
}

export interface ILoginDeps {
  /** `fetch` (tests pass a fake). */
  fetch: (url: string, init?: RequestInit) => Promise<Response>;
  /** The value of a cookie of this origin. */
  cookie: (name: string) => string | null;
  /** The admin login, from the authenticated server route. */
  credentials: () => Promise<ILoginCredentials>;
}

/** A cookie from `document.cookie`. */
export function readCookie(name: string, cookies: string = document.cookie): string | null {
  for (const part of cookies.split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) {
      return decodeURIComponent(rest.join('='));
    }
  }
  return null;
}

/**
 * Log the browser into the same-origin Label Studio as the current Jupyter
 * user's own account, so its iframe opens without a login page: GET the login
 * page (sets `csrftoken`), then POST the login form with `redirect: 'manual'`
 * (a redirect means success). The credentials are used for this one request
 * and kept nowhere.
 *
 * Label Studio answers the login page of a browser that is already logged in
 * with a redirect, and would keep that session: when it is someone else's (an
 * earlier Jupyter user of this browser) it is logged out first.
 */
export async function loginToLabelStudio(prefix: string, deps: ILoginDeps): Promise<void> {
  const loginUrl = `${prefix}/user/login/`;
  const loginPage = () => deps.fetch(loginUrl, { credentials: 'same-origin', cache: 'no-store' });
  let page = await loginPage();
  if (page.status === 503) {
    throw new LabelStudioStartingError();
  }
  let known: ILoginCredentials | null = null;
  if (page.ok && page.redirected) {
    known = await deps.credentials();
    if ((await labelStudioUser(prefix, deps)) === known.email.toLowerCase()) {
      return;
    }
    await deps.fetch(`${prefix}/logout`, {
      credentials: 'same-origin',
      cache: 'no-store',
      redirect: 'manual'
    });
    page = await loginPage();
    if (page.status === 503) {
      throw new LabelStudioStartingError();
    }
  }
  if (!page.ok) {
    throw new Error(`Label Studio login page: ${page.status} ${page.statusText}`.trim());
  }
  const csrf = deps.cookie('csrftoken');
  if (!csrf) {
    throw new Error('Label Studio did not set its csrftoken cookie.');
  }
  const { email, password } = known ?? (await deps.credentials());
  const body = new URLSearchParams({
    csrfmiddlewaretoken: csrf,
    email,
    password,
    persist_session: 'on'
  });
  const response = await deps.fetch(loginUrl, {
    method: 'POST',
    credentials: 'same-origin',
    redirect: 'manual',
    headers: {
      'Content-Type': 'application/x-www-form-urlencoded',
      'X-CSRFToken': csrf
    },
    body: body.toString()
  });
  if (response.status === 503) {
    throw new LabelStudioStartingError();
  }
  // Success is a redirect to the projects page: an opaque redirect (status 0) from fetch.
  if (response.type === 'opaqueredirect' || (response.status >= 300 && response.status < 400)) {
    return;
  }
  throw new Error(
    response.status === 200
      ? 'Label Studio refused the login of the managed account.'
      : `Label Studio login: ${response.status} ${response.statusText}`.trim()
  );
}

/** The email of the Label Studio user this browser is logged in as (lower case), or null. */
async function labelStudioUser(prefix: string, deps: ILoginDeps): Promise<string | null> {
  const who = await deps.fetch(`${prefix}/api/current-user/whoami`, {
    credentials: 'same-origin',
    cache: 'no-store'
  });
  if (!who.ok) {
    return null;
  }
  try {
    const user = (await who.json()) as { email?: unknown };
    return typeof user.email === 'string' ? user.email.toLowerCase() : null;
  } catch {
    return null;
  }
}

/* ----------------------------------------------------------------------- */
/* Files in a mount                                                         */
/* ----------------------------------------------------------------------- */

/**
 * The mount that holds `filePath` (relative to the Jupyter root) and the
 * file's path inside it; null for a file outside the mount dir. Any mount of
 * the data will do for "Who labeled this?": the server finds the session.
 *
 * @param mountDir the mount dir relative to the Jupyter root ('' when it is the root)
 */
export function mountOfFile(filePath: string, mountDir: string): { mount: string; path: string } | null {
  const clean = (p: string) => p.replace(/^\/+|\/+$/g, '');
  const file = clean(filePath);
  const dir = clean(mountDir);
  const rest = dir ? (file.startsWith(`${dir}/`) ? file.slice(dir.length + 1) : null) : file;
  if (rest === null) {
    return null;
  }
  const slash = rest.indexOf('/');
  if (slash <= 0) {
    return null;
  }
  return { mount: rest.slice(0, slash), path: rest.slice(slash) };
}

/** Per Label Studio page, the presses of its theme toggle under way. */
const togglePresses = new WeakMap<Document, Promise<void>>();

/**
 * Label Studio's own theme toggle (its top bar) reads the stored scheme once,
 * when its page loads: after a theme change in JupyterLab it would go on
 * reading "Light" in dark. Pressing it as a user would, until it reads
 * `scheme`, brings its label and its in-page state along (it cycles Auto,
 * Light, Dark and stores what it shows). A page without the toggle (another
 * Label Studio version, or not rendered yet: it then reads the stored scheme)
 * is left alone. At most 3 presses, one whole cycle: a toggle that never
 * reads `scheme` ends where it was. A second call on the same page waits for
 * the first (pressing at once, it would read a label the first is about to
 * change, and stop on the wrong one).
 */
export function syncLabelStudioToggle(page: Document, scheme: 'Light' | 'Dark'): Promise<void> {
  const presses = (togglePresses.get(page) ?? Promise.resolve()).then(() => pressToggleUntil(page, scheme));
  togglePresses.set(page, presses);
  return presses;
}

async function pressToggleUntil(page: Document, scheme: 'Light' | 'Dark'): Promise<void> {
  for (let press = 0; press < 3; press++) {
    const toggle = page.querySelector<HTMLButtonElement>('button[class*="themeToggle--"]');
    const label = toggle?.querySelector('[class*="themeToggle__label"]')?.textContent;
    if (!toggle || !label || label === scheme) {
      return;
    }
    toggle.click();
    // the toggle's next press acts on what it shows: let it render the first
    await new Promise(resolve => setTimeout(resolve, 0));
  }
}
