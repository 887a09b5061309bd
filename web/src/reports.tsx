// Reports for a period (to be built: see the issue).
import type { Agent } from './api';
import type { T } from './i18n';

export function Reports(props: { me: Agent; t: T }) {
  return <main class="reports" aria-label={props.t.t('reports')} />;
}
