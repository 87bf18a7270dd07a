import * as React from 'react';
import { Dialog } from '@jupyterlab/apputils';
import { ReactWidget } from '@jupyterlab/ui-components';

/**
 * Puts the focus on the first match of `selector` in `body` once, as soon as
 * the form is in the page, unless the form placed it itself (`autoFocus`).
 * Not the Dialog's own `focusNodeSelector`: that focuses after the body's
 * render promise, an idle callback that a busy page runs late, and so pulled
 * the focus out of a field the user was already typing in (the keystrokes
 * then went to another field, or were lost on a read-only one).
 */
function FocusOnOpen(props: { body: () => HTMLElement; selector?: string; children: JSX.Element }): JSX.Element {
  React.useLayoutEffect(() => {
    const body = props.body();
    if (props.selector && !body.contains(document.activeElement)) {
      body.querySelector<HTMLElement>(props.selector)?.focus();
    }
  }, []);
  return props.children;
}

/**
 * A dialog whose body is a form with its own buttons. `render` gets `done`,
 * which closes the dialog; resolves with what was passed to `done`, or
 * `dismissed` when it was closed otherwise (× or Escape).
 */
export function showFormDialog<T>(options: {
  title: string;
  /** Classes of the dialog; the body gets the first one with `-body`. */
  classes: string[];
  /** What gets the focus when the dialog opens, unless the form sets it (`autoFocus`). */
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
    const body: ReactWidget = ReactWidget.create(
      <FocusOnOpen body={() => body.node} selector={options.focusNodeSelector}>
        {options.render(done)}
      </FocusOnOpen>
    );
    body.addClass(`${options.classes[0]}-body`);
    dialog = new Dialog({
      title: options.title,
      body,
      buttons: [],
      hasClose: true,
      // The Dialog focuses this element late (see FocusOnOpen), then sends the focus back to it
      // whenever it leaves the dialog (its focus trap; with no element, the focus escapes behind
      // the modal). ':focus' is the field focused by then: the late focus moves nothing.
      focusNodeSelector: ':focus'
    });
    options.classes.forEach(c => dialog?.addClass(c));
    void dialog.launch().then(() => {
      dialog?.dispose();
      resolve(result);
    });
  });
}
