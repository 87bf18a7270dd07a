import { describe, expect, it } from 'vitest';
import { ServerConnection } from '@jupyterlab/services';

import { archiveUrl, attachmentName, labelExportUrl } from '../components/DownloadButton';

const settings = ServerConnection.makeSettings({ baseUrl: 'http://host/base/' });

describe('archiveUrl', () => {
  it('names the commit, the path (none for the whole repo) and the format, encoded', () => {
    expect(archiveUrl('proj/images', 'abc123', 'zip', '/', settings, '')).toBe(
      'http://host/base/pachls/api/repos/proj%2Fimages/commits/abc123/archive?format=zip'
    );
    expect(archiveUrl('images', 'abc123', 'tar', '/cats & dogs', settings, '')).toBe(
      'http://host/base/pachls/api/repos/images/commits/abc123/archive?path=%2Fcats%20%26%20dogs&format=tar'
    );
  });

  it("carries the _xsrf cookie's value, as JupyterLab's own downloads do", () => {
    expect(archiveUrl('images', 'abc', 'tar', '/', settings, 'a=1; _xsrf=2|ab|cd; b=3')).toBe(
      'http://host/base/pachls/api/repos/images/commits/abc/archive?format=tar&_xsrf=2%7Cab%7Ccd'
    );
  });
});

describe('label exports', () => {
  it('ask /labels/export for the commit and format', () => {
    expect(labelExportUrl('labels', 'abc', 'COCO', settings)).toBe(
      'http://host/base/pachls/api/labels/export?repo=labels&ref=abc&format=COCO'
    );
  });

  it("are saved under the server's file name", () => {
    expect(attachmentName('attachment; filename="labels-0123-coco.json"; filename*=UTF-8\'\'x', 'f')).toBe(
      'labels-0123-coco.json'
    );
    expect(attachmentName(null, 'fallback')).toBe('fallback');
  });
});
