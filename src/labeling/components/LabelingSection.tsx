import * as React from 'react';
import { TranslationBundle } from '@jupyterlab/translation';
import { addIcon, refreshIcon } from '@jupyterlab/ui-components';

import {
  ActionButton,
  CancelButton,
  CommitId,
  ErrorText,
  Section,
  useSignalValue
} from '../../components/common';
import { showFormDialog } from '../../components/FormDialog';
import { LABEL_FORMATS } from '../../components/ExportLabelsDialog';
import { PachlsModel } from '../../model';
import { errorMessage } from '../../state';
import { ISession } from '../api';
import { LabelingModel } from '../model';
import {
  behindText,
  commitButtonText,
  CUSTOM_XML,
  initialSessionForm,
  ISessionForm,
  labelStudioText,
  SessionFormErrors,
  sessionRequest,
  validateSessionForm
} from '../state';

/** What the section asks the application to do. */
export interface ILabelingActions {
  /** Open the labeling tab of a session. */
  open: (sessionId: string) => Promise<void>;
  /** Open the label commit dialog of a session. */
  commit: (sessionId: string) => Promise<void>;
  /** Who labeled a data file of a session (asks for the path when not given). */
  blame: (session: ISession, path?: string) => Promise<void>;
  /** Show the end of Label Studio's log. */
  showLog: () => Promise<void>;
  /** Preview, then (on confirm) load committed label files back into Label Studio. */
  resync: (sessionId: string) => Promise<void>;
  /** Ask, then delete a session. */
  remove: (sessionId: string) => Promise<void>;
}

export interface ILabelingSectionProps {
  labeling: LabelingModel;
  panel: PachlsModel;
  trans: TranslationBundle;
  actions: ILabelingActions;
}

/** The Labeling section of the Pachyderm sidebar. */
export function LabelingSection(props: ILabelingSectionProps): JSX.Element {
  const { labeling, trans, actions } = props;
  const state = useSignalValue(labeling.changed, () => labeling.state);
  const [showForm, setShowForm] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  // The form is a dialog: inline at the bottom of the sidebar it opened half below the fold.
  const openForm = React.useCallback(async () => {
    if (showForm) {
      return;
    }
    setShowForm(true);
    try {
      await showFormDialog<void>({
        title: trans.__('New labeling session'),
        classes: ['jp-PachlsNewSessionDialog'],
        focusNodeSelector: 'input',
        dismissed: undefined,
        render: done => <NewSessionForm {...props} close={() => done(undefined)} />
      });
    } finally {
      setShowForm(false);
    }
  }, [props, showForm, trans]);
  React.useEffect(() => {
    const show = () => void openForm();
    labeling.newSessionRequested.connect(show);
    return () => {
      labeling.newSessionRequested.disconnect(show);
    };
  }, [labeling, openForm]);
  const ls = state.status?.label_studio ?? null;
  const sessions = state.status?.sessions ?? [];

  const run = async (fn: () => Promise<unknown>) => {
    setError(null);
    try {
      await fn();
    } catch (reason) {
      setError(errorMessage(reason));
    }
  };

  return (
    <Section
      id="labeling"
      title={trans.__('Labeling')}
      actions={
        <>
          <ActionButton
            label={trans.__('New labeling session')}
            icon={addIcon}
            pressed={showForm}
            onClick={() => void openForm()}
          />
          <ActionButton
            label={trans.__('Refresh labeling sessions')}
            icon={refreshIcon}
            disabled={state.loading}
            onClick={() => void labeling.refresh()}
          />
        </>
      }
    >
      {state.error ? (
        <ErrorText message={state.error} trans={trans} />
      ) : (
        <div className="jp-PachlsLabelStudio" data-state={ls?.state ?? 'unknown'}>
          <span className={`jp-PachlsLabelStudio-dot jp-PachlsLabelStudio-dot-${ls?.state ?? 'unknown'}`} />
          <span className="jp-PachlsLabelStudio-text">
            {state.status ? labelStudioText(trans, ls) : trans.__('Loading…')}
          </span>
          {ls?.state === 'stopped' ? (
            <ActionButton
              label={trans.__('Start Label Studio now')}
              text={trans.__('Start')}
              onClick={() => void run(() => labeling.startLabelStudio())}
            />
          ) : null}
          {ls && (ls.state === 'failed' || (ls.restarts ?? 0) > 0) && ls.mode === 'managed' ? (
            <button
              type="button"
              className="jp-PachlsLink jp-PachlsLabelStudio-log"
              onClick={() => void run(actions.showLog)}
            >
              {trans.__('Show the log')}
            </button>
          ) : null}
        </div>
      )}
      <ErrorText message={error} trans={trans} onDismiss={() => setError(null)} />
      {sessions.length === 0 && state.status ? (
        <div className="jp-PachlsEmpty">
          {trans.__('No labeling session yet. Press + to label a repo.')}
        </div>
      ) : null}
      <ul className="jp-PachlsLabelingSessions" aria-label={trans.__('Labeling sessions')}>
        {sessions.map(session => (
          <SessionItem
            key={session.id}
            session={session}
            behind={state.data[session.id]?.behind ?? 0}
            pending={state.pending[session.id]?.count ?? null}
            pendingError={state.pendingErrors[session.id] ?? null}
            trans={trans}
            actions={actions}
            importNew={() => run(() => labeling.importNewData(session.id))}
            run={run}
          />
        ))}
      </ul>
    </Section>
  );
}

function SessionItem(props: {
  session: ISession;
  behind: number;
  pending: number | null;
  pendingError: string | null;
  trans: TranslationBundle;
  actions: ILabelingActions;
  importNew: () => Promise<void>;
  run: (fn: () => Promise<unknown>) => Promise<void>;
}): JSX.Element {
  const { session, trans, actions, run } = props;
  const [importing, setImporting] = React.useState(false);
  return (
    <li
      className="jp-PachlsLabelingSession"
      data-session={session.id}
      data-project={session.project_id}
    >
      <div className="jp-PachlsLabelingSession-title">
        <button
          type="button"
          className="jp-PachlsLink jp-PachlsLabelingSession-open"
          title={trans.__('Open the labeling tab of %1', session.title)}
          onClick={() => void run(() => actions.open(session.id))}
        >
          {session.title}
        </button>
      </div>
      <div className="jp-PachlsLabelingSession-meta">
        <span title={trans.__('Data commit the tasks were made from')}>
          {trans.__('data')} <CommitId id={session.data_commit} />
        </span>
        {session.glob && session.glob !== '/**' ? (
          <span className="jp-PachlsLabelingSession-glob">{session.glob}</span>
        ) : null}
        <span className="jp-PachlsLabelingSession-tasks">
          {trans._n('%1 task', '%1 tasks', session.tasks)}
        </span>
      </div>
      {props.behind > 0 ? (
        <div className="jp-PachlsLabelingSession-behind" data-behind={props.behind}>
          <span>{behindText(trans, props.behind)}</span>
          <ActionButton
            label={trans.__('Import new data into %1', session.title)}
            text={importing ? trans.__('Importing…') : trans.__('Import new data')}
            disabled={importing}
            onClick={() => {
              setImporting(true);
              void props.importNew().finally(() => setImporting(false));
            }}
          />
        </div>
      ) : null}
      <div className="jp-PachlsLabelingSession-actions">
        <ActionButton
          label={trans.__('Label %1', session.title)}
          text={trans.__('Label')}
          onClick={() => void run(() => actions.open(session.id))}
        />
        <ActionButton
          className="jp-PachlsLabelingSession-commit"
          label={commitButtonText(trans, props.pending)}
          title={props.pendingError ?? trans.__('Commit the labels of %1 as one commit', session.title)}
          text={commitButtonText(trans, props.pending)}
          variant={props.pending ? 'accept' : 'default'}
          onClick={() => void run(() => actions.commit(session.id))}
        />
        <ActionButton
          label={trans.__('Who labeled a file of %1?', session.title)}
          text={trans.__('Blame…')}
          onClick={() => void run(() => actions.blame(session))}
        />
        <ActionButton
          label={trans.__('Resync the labels of %1 from a label commit', session.title)}
          text={trans.__('Resync…')}
          className="jp-PachlsLabelingSession-resync"
          onClick={() => void run(() => actions.resync(session.id))}
        />
        <ActionButton
          label={trans.__('Delete the labeling session %1', session.title)}
          text={trans.__('Delete…')}
          variant="warn"
          className="jp-PachlsLabelingSession-delete"
          onClick={() => void run(() => actions.remove(session.id))}
        />
      </div>
    </li>
  );
}

function NewSessionForm(props: ILabelingSectionProps & { close: () => void }): JSX.Element {
  const { labeling, panel, trans, actions } = props;
  const panelState = useSignalValue(panel.changed, () => panel.state);
  const labelingState = useSignalValue(labeling.changed, () => labeling.state);
  const [form, setForm] = React.useState<ISessionForm>(initialSessionForm);
  const [errors, setErrors] = React.useState<SessionFormErrors>({});
  const [touched, setTouched] = React.useState(false);
  const [busy, setBusy] = React.useState(false);
  const [serverError, setServerError] = React.useState<string | null>(null);
  const started = React.useRef(0);
  const [, tick] = React.useState(0);

  React.useEffect(() => {
    if (!busy) {
      return;
    }
    // A clock, not a poll: it only redraws the elapsed time, it asks the server nothing.
    const timer = setInterval(() => tick(t => t + 1), 1000);
    return () => clearInterval(timer);
  }, [busy]);

  const sources = React.useMemo(() => {
    const items: string[] = [];
    for (const repo of panelState.repos?.repos ?? []) {
      const name = repo.project && repo.project !== 'default' ? `${repo.project}/${repo.name}` : repo.name;
      for (const branch of repo.branches) {
        items.push(`${name}@${branch.name}`);
      }
    }
    return items.sort();
  }, [panelState.repos]);

  const templates = labelingState.status?.templates ?? [];
  const update = (patch: Partial<ISessionForm>) => {
    const next = { ...form, ...patch };
    setForm(next);
    if (touched) {
      setErrors(validateSessionForm(trans, next));
    }
  };

  const submit = async () => {
    setTouched(true);
    const found = validateSessionForm(trans, form);
    setErrors(found);
    if (Object.keys(found).length > 0) {
      return;
    }
    setServerError(null);
    setBusy(true);
    started.current = Date.now();
    try {
      const session = await labeling.createSession(sessionRequest(form));
      props.close();
      await actions.open(session.id);
    } catch (reason) {
      setServerError(errorMessage(reason));
    } finally {
      setBusy(false);
    }
  };

  const ls = labelingState.status?.label_studio;
  const elapsed = Math.round((Date.now() - started.current) / 1000);
  const field = (name: keyof ISessionForm) =>
    errors[name] ? (
      <div className="jp-PachlsFieldError" role="alert" id={`jp-pachls-ls-${name}-error`}>
        {errors[name]}
      </div>
    ) : null;
  /** A labelled text input of the form, with its error under it. */
  const textField = (
    name: 'data' | 'glob' | 'labels' | 'classes',
    label: string,
    input: { placeholder?: string; list?: string } = {}
  ) => (
    <>
      <label className="jp-PachlsForm-label">
        {label}
        <input
          className="jp-PachlsInput"
          list={input.list}
          value={form[name]}
          placeholder={input.placeholder}
          disabled={busy}
          aria-invalid={!!errors[name]}
          onChange={e => update({ [name]: e.target.value })}
        />
      </label>
      {field(name)}
    </>
  );

  return (
    <form
      className="jp-PachlsForm jp-PachlsNewSession"
      aria-label={trans.__('New labeling session')}
      noValidate
      onSubmit={e => {
        e.preventDefault();
        void submit();
      }}
    >
      {textField('data', trans.__('Data (repo@branch)'), {
        placeholder: trans.__('e.g. images@master'),
        list: 'jp-pachls-labeling-sources'
      })}
      <datalist id="jp-pachls-labeling-sources">
        {sources.map(s => (
          <option key={s} value={s} />
        ))}
      </datalist>
      {textField('glob', trans.__('Path glob (optional)'), { placeholder: trans.__('e.g. /cats/*.png') })}
      {textField('labels', trans.__('Labels to (repo@branch, created if missing)'))}
      <label className="jp-PachlsForm-label">
        {trans.__('Labeling config')}
        <select
          className="jp-PachlsInput"
          value={form.template}
          disabled={busy}
          onChange={e => update({ template: e.target.value })}
        >
          {templates.map(t => (
            <option key={t.name} value={t.name}>
              {t.title}
            </option>
          ))}
          <option value={CUSTOM_XML}>{trans.__('Custom Label Studio XML')}</option>
        </select>
      </label>
      {form.template === CUSTOM_XML ? (
        <>
          <label className="jp-PachlsForm-label">
            {trans.__('Label Studio XML')}
            <textarea
              className="jp-PachlsInput jp-PachlsNewSession-xml"
              rows={6}
              value={form.xml}
              disabled={busy}
              placeholder={'<View>\n  <Image name="image" value="$image"/>\n  …\n</View>'}
              aria-invalid={!!errors.xml}
              onChange={e => update({ xml: e.target.value })}
            />
          </label>
          {field('xml')}
        </>
      ) : (
        textField('classes', trans.__('Classes (comma-separated)'), { placeholder: trans.__('e.g. cat, dog') })
      )}
      <label className="jp-PachlsForm-label">
        {trans.__('Also write into each label commit')}
        <select
          className="jp-PachlsInput jp-PachlsNewSession-exportFormat"
          value={form.exportFormat}
          disabled={busy}
          onChange={e => update({ exportFormat: e.target.value })}
        >
          <option value="">{trans.__('nothing else (label files only)')}</option>
          {LABEL_FORMATS.map(f => (
            <option key={f.name} value={f.name}>
              {trans.__('%1 in /exports/%1/', f.name)}
            </option>
          ))}
        </select>
      </label>
      {busy ? (
        <div className="jp-PachlsNewSession-progress" role="status">
          <progress className="jp-PachlsProgress" aria-label={trans.__('Creating the session')} />
          {ls && ls.state !== 'running'
            ? `${labelStudioText(trans, ls)} — ${trans.__('creating the session (%1 s)…', elapsed)}`
            : trans.__('Creating the session and importing tasks (%1 s)…', elapsed)}
        </div>
      ) : null}
      <ErrorText message={serverError} trans={trans} className="jp-PachlsNewSession-error" />
      <div className="jp-PachlsDialog-buttons">
        <CancelButton cancel={props.close} disabled={busy} trans={trans} />
        <button
          type="submit"
          className="jp-PachlsButton jp-PachlsButton-accept"
          disabled={busy}
        >
          {trans.__('Create and label')}
        </button>
      </div>
    </form>
  );
}
