import * as React from 'react';
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { TranslationBundle } from '@jupyterlab/translation';

import { API_NAMESPACE, query, responseError, seg } from '../api';
import { ChangeKind, diffKind, IDiffLine, MAX_TEXT_BYTES, textDiffLines } from '../diff';
import { formatSize, shortId } from '../format';
import { LabelChanges } from '../labeling/components/LabelChanges';
import { errorMessage } from '../state';
import { ErrorText } from './common';

/** Which commits a change is between (`from` null: the change's commit has no parent). */
export interface IDiffOf {
  repo: string;
  from: string | null;
  to: string;
  /** the `to` commit is a label commit: its `.json` files are label files */
  labels?: boolean;
}

/** URL of one file at one commit (the download route). */
export function fileUrl(
  repo: string,
  commit: string,
  path: string,
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): string {
  return URLExt.join(
    settings.baseUrl,
    API_NAMESPACE,
    `repos/${seg(repo)}/commits/${seg(commit)}/file${query({ path })}`
  );
}

/** The bytes of a file at a commit; null when it is larger than `limit` (its size then). */
async function readFile(
  repo: string,
  commit: string,
  path: string,
  limit: number
): Promise<{ blob: Blob | null; size: number }> {
  const settings = ServerConnection.makeSettings();
  const response = await ServerConnection.makeRequest(fileUrl(repo, commit, path, settings), {}, settings);
  if (!response.ok) {
    throw await responseError(response);
  }
  const size = Number(response.headers.get('Content-Length') ?? '0');
  if (size > limit) {
    void response.body?.cancel();
    return { blob: null, size };
  }
  const blob = await response.blob();
  return { blob, size: blob.size };
}

/** The change of one file, shown: text as a unified diff, images side by side, label files as annotations. */
export function DiffView(props: {
  trans: TranslationBundle;
  diffOf: IDiffOf;
  path: string;
  change: ChangeKind;
}): JSX.Element {
  const { trans, diffOf, path } = props;
  const kind = diffKind(path, diffOf.labels);
  return (
    <div className="jp-PachlsDiffView" data-kind={kind} data-path={path}>
      {kind === 'label' ? (
        <LabelChanges
          trans={trans}
          repo={diffOf.repo}
          commit={diffOf.to}
          parent={diffOf.from}
          path={path.replace(/\.json$/, '')}
        />
      ) : kind === 'image' ? (
        <ImageDiff {...props} />
      ) : (
        <TextDiff {...props} />
      )}
    </div>
  );
}

function ImageDiff(props: {
  trans: TranslationBundle;
  diffOf: IDiffOf;
  path: string;
  change: ChangeKind;
}): JSX.Element {
  const { trans, diffOf, path, change } = props;
  const [urls, setUrls] = React.useState<{ before: string | null; after: string | null } | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  React.useEffect(() => {
    let live = true;
    const made: string[] = [];
    const load = async (commit: string | null, present: boolean) => {
      if (!present || !commit) {
        return null;
      }
      const { blob } = await readFile(diffOf.repo, commit, path, Infinity);
      const url = URL.createObjectURL(blob as Blob);
      made.push(url);
      return url;
    };
    Promise.all([load(diffOf.from, change !== 'added'), load(diffOf.to, change !== 'deleted')])
      .then(([before, after]) => live && setUrls({ before, after }))
      .catch(reason => live && setError(errorMessage(reason)));
    return () => {
      live = false;
      made.forEach(url => URL.revokeObjectURL(url));
    };
  }, [diffOf.repo, diffOf.from, diffOf.to, path, change]);

  if (error) {
    return <ErrorText message={error} trans={trans} />;
  }
  if (!urls) {
    return <div className="jp-PachlsEmpty">{trans.__('Loading…')}</div>;
  }
  const side = (label: string, commit: string | null, url: string | null, which: string) => (
    <figure className="jp-PachlsImageDiff-side" data-side={which}>
      <figcaption>
        {label} {commit ? <code>{shortId(commit)}</code> : null}
      </figcaption>
      {url ? (
        <img src={url} alt={trans.__('%1 at %2', path, shortId(commit))} />
      ) : (
        <div className="jp-PachlsEmpty">{trans.__('(no file)')}</div>
      )}
    </figure>
  );
  return (
    <div className="jp-PachlsImageDiff">
      {side(trans.__('Before'), diffOf.from, urls.before, 'before')}
      {side(trans.__('After'), diffOf.to, urls.after, 'after')}
    </div>
  );
}

type TextState =
  | { state: 'loading' }
  | { state: 'error'; message: string }
  | { state: 'large'; size: number }
  | { state: 'binary' }
  | { state: 'ready'; lines: IDiffLine[] };

function TextDiff(props: {
  trans: TranslationBundle;
  diffOf: IDiffOf;
  path: string;
  change: ChangeKind;
}): JSX.Element {
  const { trans, diffOf, path, change } = props;
  const [shown, setShown] = React.useState<TextState>({ state: 'loading' });
  React.useEffect(() => {
    let live = true;
    const load = async (commit: string | null, present: boolean) =>
      present && commit ? readFile(diffOf.repo, commit, path, MAX_TEXT_BYTES) : null;
    (async () => {
      const [before, after] = await Promise.all([
        load(diffOf.from, change !== 'added'),
        load(diffOf.to, change !== 'deleted')
      ]);
      const large = [before, after].find(side => side && side.blob === null);
      if (large) {
        return { state: 'large', size: large.size } as TextState;
      }
      const texts = await Promise.all([before, after].map(side => (side?.blob ? side.blob.text() : '')));
      if (texts.some(text => text.includes('\u0000'))) {
        return { state: 'binary' } as TextState;
      }
      return { state: 'ready', lines: textDiffLines(texts[0], texts[1]) } as TextState;
    })()
      .then(next => live && setShown(next))
      .catch(reason => live && setShown({ state: 'error', message: errorMessage(reason) }));
    return () => {
      live = false;
    };
  }, [diffOf.repo, diffOf.from, diffOf.to, path, change]);

  switch (shown.state) {
    case 'loading':
      return <div className="jp-PachlsEmpty">{trans.__('Loading…')}</div>;
    case 'error':
      return <ErrorText message={shown.message} trans={trans} />;
    case 'large':
      return (
        <div className="jp-PachlsEmpty">
          {trans.__('Too large to compare here (%1).', formatSize(shown.size))}
        </div>
      );
    case 'binary':
      return <div className="jp-PachlsEmpty">{trans.__('Binary file: no text to compare.')}</div>;
    case 'ready':
      if (shown.lines.length === 0) {
        return <div className="jp-PachlsEmpty">{trans.__('Same text (only the bytes differ).')}</div>;
      }
      return (
        <table className="jp-PachlsTextDiff" aria-label={trans.__('Text changes of %1', path)}>
          <tbody>
            {shown.lines.map((line, i) => (
              <tr key={i} className={`jp-PachlsTextDiff-${line.kind}`} data-kind={line.kind}>
                <td className="jp-PachlsTextDiff-number">{line.old ?? ''}</td>
                <td className="jp-PachlsTextDiff-number">{line.new ?? ''}</td>
                <td className="jp-PachlsTextDiff-mark">
                  {line.kind === 'added' ? '+' : line.kind === 'deleted' ? '−' : ''}
                </td>
                <td className="jp-PachlsTextDiff-text">{line.text}</td>
              </tr>
            ))}
          </tbody>
        </table>
      );
  }
}
