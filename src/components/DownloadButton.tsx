import * as React from 'react';
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { TranslationBundle } from '@jupyterlab/translation';

import { API_NAMESPACE, query, seg } from '../api';
import { shortId } from '../format';

/** The archive formats the download route writes. */
export const ARCHIVE_FORMATS = ['tar', 'zip'] as const;
export type ArchiveFormat = (typeof ARCHIVE_FORMATS)[number];

/**
 * URL of the archive of `path` (default: the whole repo) at `commit`. A link the browser follows
 * itself, so the download streams to disk instead of into memory; like JupyterLab's own file
 * downloads it carries the `_xsrf` cookie's value, which Jupyter checks on a navigation.
 */
export function archiveUrl(
  repo: string,
  commit: string,
  format: ArchiveFormat,
  path = '/',
  settings: ServerConnection.ISettings = ServerConnection.makeSettings(),
  cookie: string = typeof document === 'undefined' ? '' : document.cookie
): string {
  const xsrf = cookie.match(/\b_xsrf=([^;]*)\b/);
  return URLExt.join(
    settings.baseUrl,
    API_NAMESPACE,
    `repos/${seg(repo)}/commits/${seg(commit)}/archive${query({
      path: path === '/' ? null : path,
      format,
      _xsrf: xsrf ? xsrf[1] : null
    })}`
  );
}

/** URL of a label commit's export as `format` (the download route). */
export function labelExportUrl(
  repo: string,
  commit: string,
  format: string,
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): string {
  return URLExt.join(settings.baseUrl, API_NAMESPACE, `labels/export${query({ repo, ref: commit, format })}`);
}

/** The file name a `Content-Disposition: attachment; filename="..."` names, else `fallback`. */
export function attachmentName(disposition: string | null, fallback: string): string {
  const match = disposition?.match(/filename="([^"]+)"/);
  return match ? match[1] : fallback;
}

/** "download tar · zip": links to the archive of `path` (default the whole repo) at `commit`. */
export function DownloadButton(props: {
  repo: string;
  commit: string;
  path?: string;
  trans: TranslationBundle;
}): JSX.Element {
  const { repo, commit, trans } = props;
  const path = props.path ?? '/';
  const what = path === '/' ? repo : `${repo}:${path}`;
  return (
    <span className="jp-PachlsDownload">
      {trans.__('download')}
      {ARCHIVE_FORMATS.map(format => (
        <a
          key={format}
          className="jp-PachlsLink jp-PachlsDownload-link"
          data-format={format}
          href={archiveUrl(repo, commit, format, path)}
          download
          title={trans.__('Download %1 at commit %2 as a %3 archive', what, shortId(commit), format)}
          aria-label={trans.__('Download %1 at commit %2 as %3', what, shortId(commit), format)}
        >
          {format}
        </a>
      ))}
    </span>
  );
}
