// The supervisors' live dashboard (to be built: see the issue).
import type { Agent } from './api';
import type { T } from './i18n';

export function Dashboard(props: { me: Agent; t: T }) {
  return <main class="dashboard" aria-label={props.t.t('dashboard')} />;
}
