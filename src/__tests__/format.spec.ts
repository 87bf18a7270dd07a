import { describe, expect, it } from 'vitest';

import {
  address,
  firstLine,
  formatAbsoluteTime,
  formatRelativeTime,
  formatSize,
  parseTime,
  relativeToRoot,
  repoKey,
  shortId
} from '../format';

describe('shortId', () => {
  it('keeps the first 8 characters', () => {
    expect(shortId('ce60d43bda064b00ae67de93f9be67a6')).toBe('ce60d43b');
  });
  it('is empty for a missing id', () => {
    expect(shortId(null)).toBe('');
    expect(shortId(undefined)).toBe('');
    expect(shortId('')).toBe('');
  });
});

describe('formatSize', () => {
  it('uses bytes below 1 KiB', () => {
    expect(formatSize(0)).toBe('0 B');
    expect(formatSize(1023)).toBe('1023 B');
  });
  it('uses binary units with one decimal below 10', () => {
    expect(formatSize(1024)).toBe('1 KiB');
    expect(formatSize(1536)).toBe('1.5 KiB');
    expect(formatSize(12 * 1024 * 1024)).toBe('12 MiB');
    expect(formatSize(3 * 1024 ** 4)).toBe('3 TiB');
  });
  it('is empty for nonsense', () => {
    expect(formatSize(-1)).toBe('');
    expect(formatSize(NaN)).toBe('');
    expect(formatSize(null)).toBe('');
  });
});

describe('times', () => {
  const now = new Date('2026-01-10T12:00:00Z');
  it('parses ISO timestamps and refuses garbage', () => {
    expect(parseTime('2026-01-10T12:00:00+00:00')?.getTime()).toBe(now.getTime());
    expect(parseTime('yesterday')).toBeNull();
    expect(parseTime(null)).toBeNull();
  });
  it('says "now" for the last few seconds', () => {
    expect(formatRelativeTime('2026-01-10T11:59:50Z', now, 'en')).toBe('now');
  });
  it('picks the largest fitting unit', () => {
    expect(formatRelativeTime('2026-01-10T11:55:00Z', now, 'en')).toBe('5 minutes ago');
    expect(formatRelativeTime('2026-01-10T09:00:00Z', now, 'en')).toBe('3 hours ago');
    expect(formatRelativeTime('2026-01-09T12:00:00Z', now, 'en')).toBe('yesterday');
    expect(formatRelativeTime('2025-12-20T12:00:00Z', now, 'en')).toBe('3 weeks ago');
    expect(formatRelativeTime('2024-01-10T12:00:00Z', now, 'en')).toBe('2 years ago');
    expect(formatRelativeTime('2026-01-10T14:00:00Z', now, 'en')).toBe('in 2 hours');
  });
  it('is empty without a time', () => {
    expect(formatRelativeTime(null, now)).toBe('');
    expect(formatAbsoluteTime(undefined)).toBe('');
    expect(formatAbsoluteTime('2026-01-10T12:00:00Z', 'en')).toMatch(/2026/);
  });
});

describe('names', () => {
  it('leaves the default project out of repo keys', () => {
    expect(repoKey({ name: 'images', project: 'default' })).toBe('images');
    expect(repoKey({ name: 'images', project: 'vision' })).toBe('vision/images');
    expect(repoKey({ name: 'images' })).toBe('images');
  });
  it('writes Pachyderm addresses', () => {
    expect(address('images', 'master')).toBe('images@master');
    expect(address('images', null)).toBe('images');
  });
  it('takes the first line of a message', () => {
    expect(firstLine('fix labels\n\nlong text')).toBe('fix labels');
    expect(firstLine(null)).toBe('');
  });
});

describe('relativeToRoot', () => {
  it('strips the server root', () => {
    expect(relativeToRoot('/home/u/work/pfs/images', '/home/u/work')).toBe('pfs/images');
    expect(relativeToRoot('/home/u/work/pfs/images/', '/home/u/work/')).toBe('pfs/images');
    expect(relativeToRoot('/home/u/work', '/home/u/work')).toBe('');
    expect(relativeToRoot('/pfs/images', '/')).toBe('pfs/images');
  });
  it('refuses paths outside the root and look-alike prefixes', () => {
    expect(relativeToRoot('/pfs/images', '/home/u/work')).toBeNull();
    expect(relativeToRoot('/home/u/work2/x', '/home/u/work')).toBeNull();
    expect(relativeToRoot('', '/home')).toBeNull();
    expect(relativeToRoot('/home/x', '')).toBeNull();
  });
  it('handles Windows separators', () => {
    expect(relativeToRoot('C:\\work\\pfs\\images', 'C:/work')).toBe('pfs/images');
  });
});
