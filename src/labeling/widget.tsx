import * as React from 'react';
import { IFrame, MainAreaWidget } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget, ToolbarButton, UseSignal } from '@jupyterlab/ui-components';
import { Poll } from '@lumino/polling';
import { Signal } from '@lumino/signaling';
import { Panel, Widget } from '@lumino/widgets';

import { PachlsApiError } from '../api';
import { pollUntil } from '../polling';
import { errorMessage } from '../state';
import { onVisibilityChange } from '../widgets/visibility';
import { getLogin } from './api';
import { LabelingModel } from './model';
import {
  commitButtonText,
  labelStudioPrefix,
  labelStudioText,
  LabelStudioStartingError,
  loginToLabelStudio,
  projectUrl,
  readCookie,
  syncLabelStudioToggle
} from './state';
import { labelingIcon } from './icons';

/** The pause between looks while Label Studio starts (ms). */
const WAIT_INTERVAL = 1500;

/**
 * Label Studio's own choice of color scheme ("Light", "Dark" or "Auto"), read
 * from the page's localStorage at load: the frame is same-origin (the proxy),
 * so JupyterLab's page sets it.
 */
export const LABEL_STUDIO_SCHEME_KEY = 'preferred-color-scheme';

/** Label Studio's scheme for JupyterLab's current theme (`data-jp-theme-light` on the body). */
export function labelStudioScheme(body: HTMLElement): 'Light' | 'Dark' {
  return body.dataset.jpThemeLight === 'false' ? 'Dark' : 'Light';
}

/** What the tab shows instead of Label Studio while it cannot show it. */
type Phase =
  | { kind: 'starting' }
  | { kind: 'login' }
  | { kind: 'ready' }
  | { kind: 'error'; message: string };

export interface ILabelingContentOptions {
  model: LabelingModel;
  trans: TranslationBundle;
  sessionId: string;
  baseUrl: string;
  /** How often pending labels are polled while the tab is visible (ms). */
  pendingInterval?: number;
  /** Open the log of Label Studio. */
  showLog: () => void;
}

/**
 * One labeling session in the main area: Label Studio's project in an
 * iframe, logged in automatically, with a starting state while Label Studio
 * starts. Pending labels are polled only while the tab is visible.
 */
export class LabelingContent extends Panel {
  constructor(private readonly _options: ILabelingContentOptions) {
    super();
    this.addClass('jp-PachlsLabelingContent');
    this.node.dataset.session = _options.sessionId;
    const trans = _options.trans;

    this._status = ReactWidget.create(
      <UseSignal signal={this._phaseChanged} initialArgs={this._phase}>
        {() => (
          <UseSignal signal={_options.model.changed} initialArgs={_options.model.state}>
            {() => this._renderStatus()}
          </UseSignal>
        )}
      </UseSignal>
    );
    this._status.addClass('jp-PachlsLabelingContent-status');
    this.addWidget(this._status);

    this._frame = new IFrame({
      sandbox: [
        'allow-same-origin',
        'allow-scripts',
        'allow-forms',
        'allow-popups',
        'allow-modals',
        'allow-downloads'
      ],
      referrerPolicy: 'same-origin'
    });
    this._frame.addClass('jp-PachlsLabelingContent-frame');
    const iframe = this._frame.node.querySelector('iframe');
    iframe?.setAttribute('title', trans.__('Label Studio'));
    // Label Studio's theme follows JupyterLab's: set before each page of the frame loads, and
    // switched in place on a theme change (Label Studio styles by its root's data-color-scheme).
    iframe?.addEventListener('load', () => this._followTheme());
    this._themeWatch = new MutationObserver(() => this._followTheme());
    this._themeWatch.observe(document.body, { attributes: true, attributeFilter: ['data-jp-theme-light'] });
    this._frame.hide();
    this.addWidget(this._frame);

    this._pendingPoll = new Poll({
      auto: false,
      factory: () => this._pollPending(),
      frequency: { interval: _options.pendingInterval ?? 3000, backoff: true, max: 60000 },
      linger: 0,
      name: 'pachls:labeling-pending',
      standby: 'when-hidden'
    });
    // Pending labels now and then every `pendingInterval` while the tab is seen.
    onVisibilityChange(this, visible =>
      visible ? void this._pendingPoll.start() : void this._pendingPoll.stop()
    );
  }

  get sessionId(): string {
    return this._options.sessionId;
  }

  /** The iframe (tests, screenshots). */
  get frame(): IFrame {
    return this._frame;
  }

  /** Start Label Studio if needed, log in, then show the project. */
  async load(): Promise<void> {
    const { model } = this._options;
    this._setPhase({ kind: 'starting' });
    try {
      await model.startLabelStudio();
    } catch (reason) {
      this._setPhase({ kind: 'error', message: errorMessage(reason) });
      return;
    }
    // Label Studio's status every 1.5 s until it runs or failed.
    const settled = () => {
      const state = model.labelStudio?.state;
      return this.isDisposed || state === 'running' || state === 'failed';
    };
    if (!settled()) {
      await pollUntil('pachls:labeling-start', WAIT_INTERVAL, async () => {
        await model.refreshStatus();
        return settled();
      });
    }
    const started = model.labelStudio;
    if (started?.state === 'failed') {
      this._setPhase({ kind: 'error', message: labelStudioText(this._options.trans, started) });
      return;
    }
    if (!model.session(this.sessionId)) {
      await model.refresh();
    }
    const session = model.session(this.sessionId);
    if (!session) {
      this._setPhase({
        kind: 'error',
        message: this._options.trans.__('There is no labeling session %1 on this server.', this.sessionId)
      });
      return;
    }
    const ls = model.labelStudio;
    if (ls?.mode === 'external' && ls.url) {
      // a team server: its own page (and its own login) in the frame
      this._frame.url = `${ls.url.replace(/\/+$/, '')}/projects/${session.project_id}/data`;
      this._frame.show();
      this._setPhase({ kind: 'ready' });
      return;
    }
    this._setPhase({ kind: 'login' });
    const prefix = labelStudioPrefix(this._options.baseUrl);
    let retries = 0;
    /** One login; false when Label Studio is (re)starting, so it is tried again. */
    const logIn = async (): Promise<boolean> => {
      try {
        await loginToLabelStudio(prefix, {
          fetch: (url, init) => fetch(url, init),
          cookie: name => readCookie(name),
          credentials: () =>
            getLogin().catch(reason => {
              // the server answers 503 while Label Studio (re)starts: keep waiting
              throw reason instanceof PachlsApiError && reason.status === 503
                ? new LabelStudioStartingError()
                : reason;
            })
        });
        return true;
      } catch (reason) {
        if (reason instanceof LabelStudioStartingError && retries++ < 200 && !this.isDisposed) {
          this._setPhase({ kind: 'starting' });
          return false;
        }
        throw reason;
      }
    };
    try {
      if (!(await logIn())) {
        await pollUntil('pachls:labeling-login', WAIT_INTERVAL, async () => {
          await model.refreshStatus();
          return logIn();
        });
      }
    } catch (reason) {
      this._setPhase({ kind: 'error', message: errorMessage(reason) });
      return;
    }
    this._followTheme();
    this._frame.url = projectUrl(this._options.baseUrl, session.project_id);
    this._frame.show();
    this._setPhase({ kind: 'ready' });
    if (this.isVisible) {
      void model.refreshPending(this.sessionId);
    }
  }

  dispose(): void {
    this._themeWatch.disconnect();
    this._pendingPoll.dispose();
    super.dispose();
  }

  /** One poll of the pending labels, failing (so the poll backs off) when they cannot be read. */
  private async _pollPending(): Promise<void> {
    if (this._phase.kind !== 'ready') {
      return;
    }
    if ((await this._options.model.refreshPending(this.sessionId)) === null) {
      throw new Error(this._options.model.state.pendingErrors[this.sessionId]);
    }
  }

  private _followTheme(): void {
    const scheme = labelStudioScheme(document.body);
    try {
      window.localStorage.setItem(LABEL_STUDIO_SCHEME_KEY, scheme);
    } catch {
      // storage refused (private mode): the frame keeps Label Studio's default
    }
    const page = this._frame.node.querySelector('iframe')?.contentDocument;
    page?.documentElement.setAttribute('data-color-scheme', scheme.toLowerCase());
    if (page) {
      void syncLabelStudioToggle(page, scheme);
    }
  }

  private _setPhase(phase: Phase): void {
    this._phase = phase;
    this.node.dataset.phase = phase.kind;
    this._status.setHidden(phase.kind === 'ready');
    this._phaseChanged.emit(phase);
  }

  private _renderStatus(): JSX.Element {
    const { trans, model } = this._options;
    const phase = this._phase;
    if (phase.kind === 'error') {
      return (
        <div className="jp-PachlsLabelingStatus" data-phase="error">
          <div className="jp-PachlsError" role="alert">
            <span className="jp-PachlsError-text">{phase.message}</span>
          </div>
          <div className="jp-PachlsDialog-buttons">
            <button
              type="button"
              className="jp-PachlsButton jp-PachlsButton-default"
              onClick={() => this._options.showLog()}
            >
              {trans.__('Show the Label Studio log')}
            </button>
            <button
              type="button"
              className="jp-PachlsButton jp-PachlsButton-accept"
              onClick={() => void this.load()}
            >
              {trans.__('Retry')}
            </button>
          </div>
        </div>
      );
    }
    const text =
      phase.kind === 'login'
        ? trans.__('Logging in to Label Studio…')
        : labelStudioText(trans, model.labelStudio ?? { mode: 'managed', state: 'starting', url: null, message: '', started_seconds: null, restarts: 0, log: null });
    return (
      <div className="jp-PachlsLabelingStatus" data-phase={phase.kind} role="status">
        <progress className="jp-PachlsProgress" aria-label={text} />
        <div className="jp-PachlsLabelingStatus-text">{text}</div>
        {phase.kind === 'starting' ? (
          <div className="jp-PachlsLabelingStatus-hint">
            {trans.__('The first start prepares Label Studio\'s database and can take a minute or two.')}
          </div>
        ) : null}
      </div>
    );
  }

  private _phase: Phase = { kind: 'starting' };
  private _phaseChanged = new Signal<this, Phase>(this);
  private _status: Widget;
  private _frame: IFrame;
  private _pendingPoll: Poll;
  private _themeWatch: MutationObserver;
}

/** The Commit labels (N pending) button of the tab's toolbar. */
export function CommitLabelsButton(props: {
  model: LabelingModel;
  trans: TranslationBundle;
  sessionId: string;
  onClick: () => void;
}): JSX.Element {
  const { model, trans, sessionId } = props;
  return (
    <UseSignal signal={model.changed} initialArgs={model.state}>
      {(_, state) => {
        const pending = state?.pending[sessionId];
        const count = pending ? pending.count : null;
        return (
          <button
            type="button"
            className="jp-PachlsButton jp-PachlsButton-accept jp-PachlsCommitLabels"
            data-pending={count ?? ''}
            title={state?.pendingErrors[sessionId] ?? trans.__('Commit the labels of this session as one commit')}
            onClick={props.onClick}
          >
            {commitButtonText(trans, count)}
          </button>
        );
      }}
    </UseSignal>
  );
}

/** Id of the labeling tab of a session. */
export function labelingWidgetId(sessionId: string): string {
  return `jp-pachls-labeling-${sessionId}`;
}

export function createLabelingWidget(
  options: ILabelingContentOptions & {
    commit: () => void;
    resync: () => void;
    remove: () => void;
    title: string;
  }
): MainAreaWidget<LabelingContent> {
  const content = new LabelingContent(options);
  const widget = new MainAreaWidget({ content });
  widget.id = labelingWidgetId(options.sessionId);
  widget.title.label = options.trans.__('Label: %1', options.title);
  widget.title.caption = options.title;
  widget.title.icon = labelingIcon;
  widget.title.closable = true;
  widget.addClass('jp-PachlsLabelingWidget');
  const button = ReactWidget.create(
    <CommitLabelsButton
      model={options.model}
      trans={options.trans}
      sessionId={options.sessionId}
      onClick={options.commit}
    />
  );
  button.addClass('jp-PachlsLabelingToolbar-commit');
  widget.toolbar.addItem('commit-labels', button);
  const { trans } = options;
  widget.toolbar.addItem(
    'resync-labels',
    new ToolbarButton({
      label: trans.__('Resync…'),
      tooltip: trans.__('Preview, then load the label files of a commit back into Label Studio'),
      className: 'jp-PachlsLabelingToolbar-resync',
      onClick: options.resync
    })
  );
  widget.toolbar.addItem(
    'delete-session',
    new ToolbarButton({
      label: trans.__('Delete session…'),
      tooltip: trans.__('Delete this labeling session (committed labels stay)'),
      className: 'jp-PachlsLabelingToolbar-delete',
      onClick: options.remove
    })
  );
  return widget;
}
