import { Dialog } from '@jupyterlab/apputils';
import { ReactWidget } from '@jupyterlab/ui-components';

/**
 * A dialog whose body is a form with its own buttons. `render` gets `done`,
 * which closes the dialog; resolves with what was passed to `done`, or
 * `dismissed` when it was closed otherwise (× or Escape).
 */
export function showFormDialog<T>(options: {
  title: string;
  /** Classes of the dialog; the body gets the first one with `-body`. */
  classes: string[];
  focusNodeSelector?: string;
  dismissed: T;
  render: (done: (result: T) => void) => JSX.Element;
}): Promise<T> {
  return new Promise(resolve => {
    let result = options.dismissed;
    let dialog: Dialog<unknown> | null = null;
    const done = (answer: T) => {
      result = answer;
      dialog?.reject();
    };
    const body = ReactWidget.create(options.render(done));
    body.addClass(`${options.classes[0]}-body`);
    dialog = new Dialog({
      title: options.title,
      body,
      buttons: [],
      hasClose: true,
      focusNodeSelector: options.focusNodeSelector
    });
    options.classes.forEach(c => dialog?.addClass(c));
    void dialog.launch().then(() => {
      dialog?.dispose();
      resolve(result);
    });
  });
}
