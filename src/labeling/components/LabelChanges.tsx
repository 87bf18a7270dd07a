import * as React from 'react';
import { TranslationBundle } from '@jupyterlab/translation';

import { ErrorText } from '../../components/common';
import { errorMessage } from '../../state';
import { diffLabels, ILabelDiff } from '../api';
import { changedBy, labelChangeText, labeledBy } from '../state';

/**
 * The annotations a label commit changed: the data file, the label before and
 * after, who created the annotation and who changed it.
 */
export function LabelChanges(props: {
  trans: TranslationBundle;
  repo: string;
  commit: string;
  parent: string | null;
  /** only the annotations of this data file */
  path?: string;
  load?: typeof diffLabels;
}): JSX.Element {
  const { trans } = props;
  const [diff, setDiff] = React.useState<ILabelDiff | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  React.useEffect(() => {
    let live = true;
    (props.load ?? diffLabels)(props.repo, props.commit, props.parent)
      .then(d => live && setDiff(d))
      .catch(reason => live && setError(errorMessage(reason)));
    return () => {
      live = false;
    };
  }, [props.repo, props.commit, props.parent]);

  if (error) {
    return <ErrorText message={error} trans={trans} />;
  }
  if (!diff) {
    return <div className="jp-PachlsEmpty">{trans.__('Loading…')}</div>;
  }
  const changes = props.path ? diff.changes.filter(c => c.path === props.path) : diff.changes;
  if (changes.length === 0) {
    return <div className="jp-PachlsEmpty">{trans.__('No annotation changed.')}</div>;
  }
  return (
    <table className="jp-PachlsLabelChanges" aria-label={trans.__('Label changes')}>
      <thead>
        <tr>
          <th>{trans.__('File')}</th>
          <th>{trans.__('Label')}</th>
          <th title={trans.__('Who created the annotation')}>{trans.__('Labeled by')}</th>
          <th title={trans.__('Who changed it in this commit')}>{trans.__('Changed by')}</th>
        </tr>
      </thead>
      <tbody>
        {changes.map(c => (
          <tr
            key={`${c.path}:${c.annotation}`}
            className="jp-PachlsLabelChange"
            data-path={c.path}
            data-change={c.change}
          >
            <td className="jp-PachlsLabelChange-path" title={c.path}>
              {c.path}
            </td>
            <td className="jp-PachlsLabelChange-labels">{labelChangeText(c)}</td>
            <td className="jp-PachlsLabelChange-annotators">{labeledBy(c).join(', ')}</td>
            <td className="jp-PachlsLabelChange-changedBy">{changedBy(c).join(', ')}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
