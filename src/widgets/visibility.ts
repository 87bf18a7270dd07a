import { Message, MessageLoop } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

/**
 * Tell `onChange` whenever `widget` becomes visible or hidden (shown, hidden,
 * attached, detached), so what it shows is polled only while it can be seen.
 */
export function onVisibilityChange(widget: Widget, onChange: (visible: boolean) => void): void {
  MessageLoop.installMessageHook(widget, (_, msg: Message) => {
    switch (msg.type) {
      case 'after-attach':
        onChange(widget.isVisible);
        break;
      case 'after-show':
        onChange(true);
        break;
      case 'after-hide':
      case 'before-detach':
        onChange(false);
        break;
    }
    return true;
  });
}
