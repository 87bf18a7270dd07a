/** Formatting helpers of the panel: pure functions, unit tested. */

/** Length of the commit id prefix shown in the panel. */
export const SHORT_ID_LENGTH = 8;

/** The first 8 characters of a commit id ('' for none). */
export function shortId(id: string | null | undefined): string {
  return id ? id.slice(0, SHORT_ID_LENGTH) : '';
}

const SIZE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** A byte count in binary units: `0 B`, `512 B`, `1.5 KiB`, `12 MiB`. */
export function formatSize(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !isFinite(bytes) || bytes < 0) {
    return '';
  }
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < SIZE_UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  if (unit === 0) {
    return `${value} B`;
  }
  const text = value >= 10 ? Math.round(value).toString() : value.toFixed(1);
  return `${text.replace(/\.0$/, '')} ${SIZE_UNITS[unit]}`;
}

/** Parse an ISO timestamp; null when missing or invalid. */
export function parseTime(iso: string | null | undefined): Date | null {
  if (!iso) {
    return null;
  }
  const date = new Date(iso);
  return isNaN(date.getTime()) ? null : date;
}

/**
 * A relative time in words, in the language of the page (`Intl.RelativeTimeFormat`):
 * "5 minutes ago", "yesterday", "in 2 hours". '' for a missing time.
 */
export function formatRelativeTime(
  iso: string | null | undefined,
  now: Date = new Date(),
  locale?: string
): string {
  const date = parseTime(iso);
  if (!date) {
    return '';
  }
  const seconds = Math.round((date.getTime() - now.getTime()) / 1000);
  const abs = Math.abs(seconds);
  const rtf = new Intl.RelativeTimeFormat(locale, { numeric: 'auto' });
  if (abs < 45) {
    return rtf.format(0, 'second');
  }
  const steps: Array<[number, Intl.RelativeTimeFormatUnit]> = [
    [60, 'second'],
    [60, 'minute'],
    [24, 'hour'],
    [7, 'day'],
    [4.35, 'week'],
    [12, 'month'],
    [Number.POSITIVE_INFINITY, 'year']
  ];
  let value = seconds;
  for (const [size, unit] of steps) {
    if (Math.abs(value) < size) {
      return rtf.format(Math.round(value), unit);
    }
    value /= size;
  }
  return rtf.format(Math.round(value), 'year');
}

/** An absolute local date and time for tooltips; '' for a missing time. */
export function formatAbsoluteTime(
  iso: string | null | undefined,
  locale?: string
): string {
  const date = parseTime(iso);
  if (!date) {
    return '';
  }
  return date.toLocaleString(locale, {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit'
  });
}

/** `repo` or `project/repo` (the default project is left out). */
export function repoKey(repo: { name: string; project?: string }): string {
  return repo.project && repo.project !== 'default'
    ? `${repo.project}/${repo.name}`
    : repo.name;
}

/** Pachyderm address of a branch or commit: `repo@ref`. */
export function address(repo: string, ref: string | null | undefined): string {
  return ref ? `${repo}@${ref}` : repo;
}

/** The first line of a commit message. */
export function firstLine(message: string | null | undefined): string {
  if (!message) {
    return '';
  }
  const index = message.indexOf('\n');
  return (index === -1 ? message : message.slice(0, index)).trim();
}

/**
 * The path of `absolute` relative to the Jupyter server root, as the file
 * browser and the contents API name it ('' for the root itself), or null when it
 * lies outside the root (or either is unknown).
 */
export function relativeToRoot(
  absolute: string | null | undefined,
  serverRoot: string | null | undefined
): string | null {
  if (!absolute || !serverRoot) {
    return null;
  }
  const norm = (p: string) => p.replace(/\\/g, '/').replace(/\/+$/, '') || '/';
  const path = norm(absolute);
  const root = norm(serverRoot);
  if (path === root) {
    return '';
  }
  const prefix = root === '/' ? '/' : `${root}/`;
  if (!path.startsWith(prefix)) {
    return null;
  }
  return path.slice(prefix.length);
}
