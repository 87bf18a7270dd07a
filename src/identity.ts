import { ISignal, Signal } from '@lumino/signaling';
import { TranslationBundle } from '@jupyterlab/translation';

import { getIdentity, IIdentity, IdentitySource, PachlsApiError, putIdentity } from './api';
import { errorMessage } from './state';

/** The identity calls the model makes; tests pass fakes. */
export interface IIdentityApi {
  getIdentity: typeof getIdentity;
  putIdentity: typeof putIdentity;
}

export const identityRestApi: IIdentityApi = { getIdentity, putIdentity };

/**
 * Shows the name + email dialog. `save` sends what the user typed (and
 * throws the server's refusal, for the dialog to show); resolves with the
 * saved identity, or null when the user closed the dialog without saving.
 */
export type AskIdentity = (options: {
  current: IIdentity | null;
  /** Why we ask (the server's message), or null when the user chose to change it. */
  reason: string | null;
  save: (name: string, email: string) => Promise<IIdentity>;
}) => Promise<IIdentity | null>;

export interface IIdentityState {
  identity: IIdentity | null;
  error: string | null;
}

/**
 * Who commits are recorded as, and the one place that asks for a name and
 * email: on start when none is known, and when a route answers 409
 * `identity_required` (the request layer then sends the request again).
 * Callers that fail at the same time share one dialog.
 */
export class IdentityModel {
  constructor(options: { ask: AskIdentity; api?: IIdentityApi }) {
    this._ask = options.ask;
    this._api = options.api ?? identityRestApi;
  }

  get state(): IIdentityState {
    return this._state;
  }

  get changed(): ISignal<this, IIdentityState> {
    return this._changed;
  }

  get identity(): IIdentity | null {
    return this._state.identity;
  }

  /** Read what the server knows. */
  async refresh(): Promise<IIdentity | null> {
    try {
      const identity = await this._api.getIdentity();
      this._set({ identity, error: null });
      return identity;
    } catch (reason) {
      this._set({ error: errorMessage(reason) });
      return null;
    }
  }

  /** Save a name and email (the server validates them; its refusal is thrown). */
  async save(name: string, email: string): Promise<IIdentity> {
    const identity = await this._api.putIdentity(name, email);
    this._set({ identity, error: null });
    return identity;
  }

  /**
   * Open the dialog (once for every caller waiting meanwhile); true when an
   * identity is known afterwards.
   */
  ask(reason: string | null = null): Promise<boolean> {
    if (!this._asking) {
      this._asking = this._askOnce(reason).finally(() => {
        this._asking = null;
      });
    }
    return this._asking;
  }

  /** On start: ask once when the server knows no identity. */
  async checkOnStart(): Promise<void> {
    const identity = await this.refresh();
    if (identity?.required) {
      await this.ask(null);
    }
  }

  /** For `setIdentityRequiredHandler`: re-read first (another tab may have set it), else ask. */
  readonly handleIdentityRequired = async (error: PachlsApiError): Promise<boolean> => {
    if (this._asking) {
      return this._asking;
    }
    const identity = await this.refresh();
    if (identity && !identity.required) {
      // set meanwhile: the request layer tries once more without asking
      return true;
    }
    return this.ask(error.message);
  };

  private async _askOnce(reason: string | null): Promise<boolean> {
    const saved = await this._ask({
      current: this._state.identity,
      reason,
      save: (name, email) => this.save(name, email)
    });
    return saved !== null && !saved.required;
  }

  private _set(patch: Partial<IIdentityState>): void {
    this._state = { ...this._state, ...patch };
    this._changed.emit(this._state);
  }

  private _ask: AskIdentity;
  private _api: IIdentityApi;
  private _asking: Promise<boolean> | null = null;
  private _state: IIdentityState = { identity: null, error: null };
  private _changed = new Signal<this, IIdentityState>(this);
}

/* ----------------------------------------------------------------------- */
/* Pure helpers                                                             */
/* ----------------------------------------------------------------------- */

/** How the author reads in history: `Name <email>`, or the name alone. */
export function authorText(identity: Pick<IIdentity, 'name' | 'email'> | null): string {
  if (!identity?.name) {
    return '';
  }
  return identity.email ? `${identity.name} <${identity.email}>` : identity.name;
}

/** Where the identity comes from, in words. */
export function identitySourceText(trans: TranslationBundle, source: IdentitySource | null): string {
  switch (source) {
    case 'jupyter':
      return trans.__('from your Jupyter login');
    case 'configured':
      return trans.__('set for this server');
    case 'git':
      return trans.__('from git config');
    default:
      return '';
  }
}

// C0 and C1 control characters (tab, newline, NUL, ...)
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

export type IdentityFormErrors = { name?: string; email?: string };

/**
 * What is wrong with a name and email, per field (empty: nothing). The same
 * rules as the server, plus no `<` `>`: the author is written `Name <email>`.
 */
export function validateIdentity(
  trans: TranslationBundle,
  name: string,
  email: string
): IdentityFormErrors {
  const errors: IdentityFormErrors = {};
  const n = name.trim();
  const e = email.trim();
  if (!n) {
    errors.name = trans.__('Give the name your commits should carry.');
  } else if (CONTROL.test(n) || /[<>]/.test(n)) {
    errors.name = trans.__('A name cannot hold control characters, < or >.');
  }
  const parts = e.split('@');
  if (!e) {
    errors.email = trans.__('Give an email address.');
  } else if (CONTROL.test(e) || /[\s<>]/.test(e)) {
    errors.email = trans.__('An email address cannot hold spaces, control characters, < or >.');
  } else if (parts.length !== 2 || !parts[0] || !parts[1]) {
    errors.email = trans.__('Write the email as name@example.org (one @).');
  }
  return errors;
}
