import * as React from 'react';
import { ServerConnection } from '@jupyterlab/services';
import { TranslationBundle } from '@jupyterlab/translation';

import { responseError } from '../api';
import { address, shortId } from '../format';
import { ErrorText } from './common';
import { attachmentName, labelExportUrl } from './DownloadButton';
import { showFormDialog } from './FormDialog';

/** The training formats `GET /labels/export` renders (labeling/formats.py FORMATS), with what each holds. */
export const LABEL_FORMATS: { name: string; fits: string }[] = [
  { name: 'COCO', fits: 'rectangles, polygons or keypoints on images (one JSON file)' },
  { name: 'YOLO', fits: 'rectangles, polygons or keypoints on images (a zip)' },
  { name: 'VOC', fits: 'rectangles on images (a zip)' },
  { name: 'CSV', fits: 'any labels (one CSV file)' },
  { name: 'JSON_MIN', fits: 'any labels (one JSON file)' }
];

/**
 * Fetch the export (the server renders it whole before the first byte, so a refusal such as
 * `format_mismatch` comes as an error to show here) and hand it to the browser as a download.
 */
async function download(repo: string, commit: string, format: string): Promise<string> {
  const settings = ServerConnection.makeSettings();
  const response = await ServerConnection.makeRequest(labelExportUrl(repo, commit, format, settings), {}, settings);
  if (!response.ok) {
    throw await responseError(response);
  }
  const name = attachmentName(response.headers.get('Content-Disposition'), `${repo}-${format.toLowerCase()}`);
  const url = URL.createObjectURL(await response.blob());
  try {
    const link = document.createElement('a');
    link.href = url;
    link.download = name;
    document.body.appendChild(link);
    link.click();
    link.remove();
  } finally {
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  }
  return name;
}

function ExportLabelsForm(props: {
  repo: string;
  commit: string;
  trans: TranslationBundle;
  done: (name: string | null) => void;
}): JSX.Element {
  const { trans } = props;
  const [format, setFormat] = React.useState('COCO');
  const [busy, setBusy] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  const start = async () => {
    setBusy(true);
    setError(null);
    try {
      props.done(await download(props.repo, props.commit, format));
    } catch (reason) {
      setError(reason instanceof Error ? reason.message : String(reason));
      setBusy(false);
    }
  };
  return (
    <div className="jp-PachlsExportLabels">
      <label className="jp-PachlsCommitForm-label">
        {trans.__('Format')}{' '}
        <select
          className="jp-PachlsInput jp-PachlsExportLabels-format"
          value={format}
          disabled={busy}
          onChange={event => setFormat(event.target.value)}
        >
          {LABEL_FORMATS.map(f => (
            <option key={f.name} value={f.name}>
              {f.name} — {f.fits}
            </option>
          ))}
        </select>
      </label>
      <div className="jp-PachlsBackendForm-hint">
        {trans.__('Image paths point at the exact data commit each label was made on.')}
      </div>
      <ErrorText message={error} trans={trans} />
      <div className="jp-PachlsDialog-buttons">
        <button type="button" className="jp-PachlsButton" onClick={() => props.done(null)}>
          {trans.__('Cancel')}
        </button>
        <button
          type="button"
          className="jp-PachlsButton jp-PachlsButton-accept jp-PachlsExportLabels-start"
          disabled={busy}
          onClick={() => void start()}
        >
          {busy ? trans.__('Exporting…') : trans.__('Download')}
        </button>
      </div>
    </div>
  );
}

/** "Export labels…": pick a training format, download the label commit's labels in it. */
export function showExportLabelsDialog(repo: string, commit: string, trans: TranslationBundle): Promise<string | null> {
  return showFormDialog<string | null>({
    title: trans.__('Export labels of %1', address(repo, shortId(commit))),
    classes: ['jp-PachlsExportLabelsDialog'],
    focusNodeSelector: '.jp-PachlsExportLabels-format',
    dismissed: null,
    render: done => <ExportLabelsForm repo={repo} commit={commit} trans={trans} done={done} />
  });
}
