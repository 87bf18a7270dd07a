import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { query, seg } from './index';
import { Answer } from './models';
import { API_NAMESPACE, PachlsApiError, requestAPI } from './request';

/** `POST /repos/{repo}/branches/{branch}/import`: the commit holding every imported file. */
export type IImportResult = Answer<'importFiles', 201>;
/** `GET /imports/{id}`: how far a running import is. */
export type IImportProgress = Answer<'getImport'>;

/** A file to upload and where it goes, relative to the import's folder (`cats/001.png`). */
export interface IUploadFile {
  file: File;
  path: string;
}

export interface IImportOptions {
  /** The repo folder to import into (`/` by default). */
  dest: string;
  message: string;
  /** The id the server knows the import by (progress, cancel). */
  id: string;
}

function importUrl(repo: string, branch: string, options: IImportOptions): string {
  const settings = ServerConnection.makeSettings();
  return (
    URLExt.join(settings.baseUrl, API_NAMESPACE, `repos/${seg(repo)}/branches/${seg(branch)}/import`) +
    query({ dest: options.dest || '/', message: options.message, id: options.id })
  );
}

function cookie(name: string): string | undefined {
  const prefix = name + '=';
  let found: string | undefined;
  for (const part of document.cookie.split(';')) {
    const trimmed = part.trim();
    if (trimmed.startsWith(prefix)) {
      found = decodeURIComponent(trimmed.slice(prefix.length));
    }
  }
  return found;
}

/** A fresh id for an import (what `GET/DELETE /imports/{id}` name). */
export function newImportId(): string {
  return `ui-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}

/**
 * Upload files as multipart/form-data into ONE commit. XMLHttpRequest, not
 * fetch: only it reports upload progress. Authenticated as `requestAPI` is
 * (Jupyter's token, else the XSRF cookie). `signal` aborts the upload: the
 * server sees the connection close and commits nothing.
 */
export function uploadFiles(
  repo: string,
  branch: string,
  files: IUploadFile[],
  options: IImportOptions & {
    onProgress: (sent: number, total: number) => void;
    signal: AbortSignal;
  }
): Promise<IImportResult> {
  const form = new FormData();
  for (const { file, path } of files) {
    form.append('file', file, path);
  }
  const settings = ServerConnection.makeSettings();
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', importUrl(repo, branch, options));
    if (settings.token) {
      xhr.setRequestHeader('Authorization', `token ${settings.token}`);
    }
    const xsrf = cookie('_xsrf');
    if (xsrf !== undefined) {
      xhr.setRequestHeader('X-XSRFToken', xsrf);
    }
    xhr.upload.onprogress = event => options.onProgress(event.loaded, event.total);
    xhr.onload = () => {
      let body: any = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      if (xhr.status === 201 && body) {
        resolve(body as IImportResult);
      } else if (body && typeof body.error === 'string') {
        reject(new PachlsApiError(xhr.status, body));
      } else {
        reject(
          new PachlsApiError(xhr.status, {
            error: 'http_error',
            message: `${xhr.status} ${xhr.statusText}`.trim(),
            details: {}
          })
        );
      }
    };
    xhr.onerror = () =>
      reject(
        new PachlsApiError(0, {
          error: 'network_error',
          message: 'The upload could not reach the Jupyter server; nothing was committed.',
          details: {}
        })
      );
    xhr.onabort = () =>
      reject(
        new PachlsApiError(0, {
          error: 'cancelled',
          message: 'The import was cancelled; nothing was committed.',
          details: {}
        })
      );
    options.signal.addEventListener('abort', () => xhr.abort());
    xhr.send(form);
  });
}

/** Import files or folders under the Jupyter root, read by the server itself. */
export function importFolder(
  repo: string,
  branch: string,
  source: string,
  options: IImportOptions
): Promise<IImportResult> {
  const endpoint =
    `repos/${seg(repo)}/branches/${seg(branch)}/import` +
    query({ dest: options.dest || '/', message: options.message, id: options.id });
  return requestAPI<IImportResult>(endpoint, { method: 'POST', body: { source } });
}

export function importProgress(id: string): Promise<IImportProgress> {
  return requestAPI<IImportProgress>(`imports/${seg(id)}`);
}

/** Cancel a running import: its request then answers 409 `cancelled`, nothing lands. */
export async function cancelImport(id: string): Promise<void> {
  await requestAPI<void>(`imports/${seg(id)}`, { method: 'DELETE' });
}

/**
 * The files a drop holds, folders walked (their relative paths kept):
 * `webkitGetAsEntry` is the one way a browser hands over a dropped folder.
 */
export async function droppedFiles(data: DataTransfer): Promise<IUploadFile[]> {
  const entries: FileSystemEntry[] = [];
  for (const item of Array.from(data.items)) {
    const entry = item.kind === 'file' ? item.webkitGetAsEntry() : null;
    if (entry) {
      entries.push(entry);
    }
  }
  if (entries.length === 0) {
    return Array.from(data.files).map(file => ({ file, path: file.name }));
  }
  const found: IUploadFile[] = [];
  const walk = async (entry: FileSystemEntry, prefix: string): Promise<void> => {
    if (entry.isFile) {
      const file = await new Promise<File>((resolve, reject) =>
        (entry as FileSystemFileEntry).file(resolve, reject)
      );
      found.push({ file, path: prefix + entry.name });
    } else if (entry.isDirectory) {
      const reader = (entry as FileSystemDirectoryEntry).createReader();
      // readEntries answers in batches until an empty one
      for (;;) {
        const batch = await new Promise<FileSystemEntry[]>((resolve, reject) =>
          reader.readEntries(resolve, reject)
        );
        if (batch.length === 0) {
          break;
        }
        for (const child of batch) {
          await walk(child, `${prefix}${entry.name}/`);
        }
      }
    }
  };
  for (const entry of entries) {
    await walk(entry, '');
  }
  return found;
}
