// The admins' settings screens (to be built: see the issue).
import type { Agent } from '../api';
import type { T } from '../i18n';

export function Settings(props: { me: Agent; t: T }) {
  return <main class="settings" aria-label={props.t.t('settings')} />;
}
