import { LabIcon } from '@jupyterlab/ui-components';

/** A stack of versioned layers: the Pachyderm panel's icon. */
const pachydermSvg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M12 2 2 7l10 5 10-5-10-5zm0 7.8L5.6 7 12 4.2 18.4 7 12 9.8z"/>
    <path d="m2 12 10 5 10-5-2.2-1.1L12 14.8l-7.8-3.9L2 12z"/>
    <path d="m2 17 10 5 10-5-2.2-1.1L12 19.8l-7.8-3.9L2 17z"/>
  </g>
</svg>`;

export const pachydermIcon = new LabIcon({
  name: 'jupyterlab-pachls:pachyderm',
  svgstr: pachydermSvg
});
