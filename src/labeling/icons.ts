import { LabIcon } from '@jupyterlab/ui-components';

/** A tag: labeling sessions and the labeling tab. */
const labelingSvg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M21.4 11.6 12.4 2.6C12 2.2 11.5 2 11 2H4c-1.1 0-2 .9-2 2v7c0 .6.2 1.1.6 1.4l9 9c.4.4.9.6 1.4.6s1-.2 1.4-.6l7-7c.4-.4.6-.9.6-1.4s-.2-1-.6-1.4zM13 20 4 11V4h7l9 9-7 7z"/>
    <circle cx="6.5" cy="6.5" r="1.5"/>
  </g>
</svg>`;

export const labelingIcon = new LabIcon({
  name: 'jupyterlab-pachls:labeling',
  svgstr: labelingSvg
});
