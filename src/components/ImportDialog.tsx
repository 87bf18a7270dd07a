import * as React from 'react';
import { TranslationBundle } from '@jupyterlab/translation';

import {
  IImportProgress,
  IImportResult,
  IUploadFile,
  cancelImport,
  importFolder,
  importProgress,
  newImportId,
  uploadFiles
} from '../api/imports';
import { address, formatSize, shortId } from '../format';
import { errorMessage } from '../state';
import { CancelButton, ErrorText } from './common';
import { showFormDialog } from './FormDialog';

/** How often a folder import's progress is asked for while it runs. */
const PROGRESS_POLL_MS = 500;

interface IShown {
  files: number;
  bytes: number;
  totalFiles: number | null;
  totalBytes: number | null;
  rate: number;
  committing: boolean;
}

/**
 * "Import folder…" on a branch (a folder under the Jupyter root, read by the
 * server) or files dropped on it (uploaded): ONE commit, with progress and
 * Cancel (nothing is committed then). Resolves with the commit, or null.
 */
export function showImportDialog(options: {
  repo: string;
  branch: string;
  files: IUploadFile[] | null;
  trans: TranslationBundle;
}): Promise<IImportResult | null> {
  const { trans } = options;
  return showFormDialog<IImportResult | null>({
    title: trans.__('Import into %1', address(options.repo, options.branch)),
    classes: ['jp-PachlsImportDialog'],
    focusNodeSelector: 'input',
    dismissed: null,
    render: done => <ImportForm {...options} done={done} />
  });
}

function ImportForm(props: {
  repo: string;
  branch: string;
  files: IUploadFile[] | null;
  trans: TranslationBundle;
  done: (result: IImportResult | null) => void;
}): JSX.Element {
  const { trans, files } = props;
  const [source, setSource] = React.useState('');
  const [dest, setDest] = React.useState('/');
  const [message, setMessage] = React.useState('');
  const [error, setError] = React.useState<string | null>(null);
  const [running, setRunning] = React.useState<{ id: string; abort: AbortController } | null>(null);
  const [shown, setShown] = React.useState<IShown | null>(null);
  const [result, setResult] = React.useState<IImportResult | null>(null);
  // a dialog closed mid-import (× or Escape) cancels it: nothing lands unseen
  const runningRef = React.useRef(running);
  runningRef.current = running;
  React.useEffect(
    () => () => {
      const current = runningRef.current;
      if (current !== null) {
        current.abort.abort();
        cancelImport(current.id).catch(() => undefined);
      }
    },
    []
  );
  const uploadBytes = React.useMemo(
    () => (files ?? []).reduce((sum, f) => sum + f.file.size, 0),
    [files]
  );

  const start = async (event: React.FormEvent) => {
    event.preventDefault();
    if (files === null && !source.trim()) {
      setError(trans.__('Name a folder (or file) under the Jupyter root.'));
      return;
    }
    const id = newImportId();
    const abort = new AbortController();
    const started = Date.now();
    setError(null);
    setRunning({ id, abort });
    const importOptions = { dest: dest.trim() || '/', message: message.trim(), id };
    let poll: number | null = null;
    try {
      let answer: IImportResult;
      if (files !== null) {
        setShown({ files: 0, bytes: 0, totalFiles: files.length, totalBytes: uploadBytes, rate: 0, committing: false });
        answer = await uploadFiles(props.repo, props.branch, files, {
          ...importOptions,
          signal: abort.signal,
          onProgress: (sent, total) =>
            setShown({
              files: 0,
              bytes: sent,
              totalFiles: files.length,
              totalBytes: total,
              rate: sent / Math.max((Date.now() - started) / 1000, 0.001),
              committing: sent >= total
            })
        });
      } else {
        poll = window.setInterval(() => {
          importProgress(id)
            .then((p: IImportProgress) =>
              setShown({
                files: p.files,
                bytes: p.bytes,
                totalFiles: p.total_files,
                totalBytes: p.total_bytes,
                rate: p.bytes_per_second,
                committing: p.state === 'committing'
              })
            )
            .catch(() => undefined); // not registered yet, or already done
        }, PROGRESS_POLL_MS);
        answer = await importFolder(props.repo, props.branch, source.trim(), importOptions);
      }
      setResult(answer);
    } catch (reason) {
      setError(errorMessage(reason));
    } finally {
      if (poll !== null) {
        window.clearInterval(poll);
      }
      setRunning(null);
      setShown(null);
    }
  };

  const cancel = () => {
    if (running === null) {
      props.done(null);
      return;
    }
    running.abort.abort();
    cancelImport(running.id).catch(() => undefined); // an upload may not be registered yet
  };

  if (result !== null) {
    return (
      <div className="jp-PachlsImport-done" role="status">
        <p>
          {trans.__(
            'Committed %1 files (%2) to %3: %4',
            result.files,
            formatSize(result.bytes),
            address(props.repo, props.branch),
            shortId(result.commit.id)
          )}
        </p>
        <div className="jp-PachlsForm-buttons">
          <button
            type="button"
            className="jp-PachlsButton jp-PachlsButton-accept"
            onClick={() => props.done(result)}
          >
            {trans.__('Close')}
          </button>
        </div>
      </div>
    );
  }

  return (
    <form className="jp-PachlsImport" aria-label={trans.__('Import')} onSubmit={start}>
      {files === null ? (
        <label>
          {trans.__('Folder or file under the Jupyter root')}
          <input
            type="text"
            className="jp-PachlsInput jp-PachlsImport-source"
            placeholder={trans.__('e.g. data/images')}
            value={source}
            disabled={running !== null}
            onChange={e => setSource(e.target.value)}
          />
        </label>
      ) : (
        <p className="jp-PachlsImport-files">
          {trans._n('%1 file', '%1 files', files.length)} ({formatSize(uploadBytes)})
        </p>
      )}
      <label>
        {trans.__('Into the repo folder')}
        <input
          type="text"
          className="jp-PachlsInput jp-PachlsImport-dest"
          value={dest}
          disabled={running !== null}
          onChange={e => setDest(e.target.value)}
        />
      </label>
      <label>
        {trans.__('Commit message (optional)')}
        <input
          type="text"
          className="jp-PachlsInput jp-PachlsImport-message"
          value={message}
          disabled={running !== null}
          onChange={e => setMessage(e.target.value)}
        />
      </label>
      {shown !== null ? <ImportProgressLine shown={shown} trans={trans} /> : null}
      <div className="jp-PachlsForm-buttons">
        <button
          type="submit"
          className="jp-PachlsButton jp-PachlsButton-accept jp-PachlsImport-start"
          disabled={running !== null}
        >
          {running !== null ? trans.__('Importing…') : trans.__('Import')}
        </button>
        <CancelButton cancel={cancel} trans={trans} />
      </div>
      <ErrorText message={error} trans={trans} />
    </form>
  );
}

function ImportProgressLine(props: { shown: IShown; trans: TranslationBundle }): JSX.Element {
  const { shown, trans } = props;
  const fraction = shown.totalBytes ? Math.min(1, shown.bytes / shown.totalBytes) : undefined;
  const text = shown.committing
    ? trans.__('Committing…')
    : shown.files > 0
      ? trans.__(
          '%1 of %2 files, %3 of %4, %5/s',
          shown.files,
          shown.totalFiles ?? '?',
          formatSize(shown.bytes),
          shown.totalBytes === null ? '?' : formatSize(shown.totalBytes),
          formatSize(shown.rate)
        )
      : trans.__(
          '%1 of %2 sent, %3/s',
          formatSize(shown.bytes),
          shown.totalBytes === null ? '?' : formatSize(shown.totalBytes),
          formatSize(shown.rate)
        );
  return (
    <div className="jp-PachlsImport-progress" role="status">
      <progress
        className="jp-PachlsProgress"
        aria-label={trans.__('Import progress')}
        max={fraction === undefined ? undefined : 1}
        value={fraction}
      />
      {text}
    </div>
  );
}
