// The admins' settings screens: one sub-section per thing the API
// configures. Every screen saves through the REST API and shows the API's
// validation error beside the field it names.
import { useEffect, useState } from 'preact/hooks';
import type { Agent } from '../api';
import { strings, type T } from '../i18n';
import { list } from './form';
import type { AgentFull, CalendarDoc, Lookups, Team, TemplateDoc } from './types';
import { General } from './general';
import { Agents } from './agents';
import { Teams } from './teams';
import { Channels } from './channels';
import { Rules } from './rules';
import { SlaPolicies } from './sla';
import { Calendars } from './calendars';
import { Templates } from './templates';
import { Blacklist } from './blacklist';
import { Webhooks } from './webhooks';
import { PhoneNumbers } from './numbers';
import { IvrMenus } from './ivr';
import { ForwardingSchemes } from './schemes';
import './admin.css';

const s = strings({
  ru: {
    general: 'Общие',
    agents: 'Операторы',
    teams: 'Команды',
    channels: 'Каналы',
    rules: 'Правила',
    sla: 'SLA',
    calendars: 'Календари',
    templates: 'Шаблоны',
    blacklist: 'Чёрный список',
    webhooks: 'Вебхуки',
    numbers: 'Номера',
    ivr: 'Голосовое меню',
    schemes: 'Переадресация',
    nav: 'Разделы настроек',
  },
  en: {
    general: 'General',
    agents: 'Agents',
    teams: 'Teams',
    channels: 'Channels',
    rules: 'Rules',
    sla: 'SLA policies',
    calendars: 'Calendars',
    templates: 'Templates',
    blacklist: 'Blacklist',
    webhooks: 'Webhooks',
    numbers: 'Phone numbers',
    ivr: 'IVR menus',
    schemes: 'Forwarding schemes',
    nav: 'Settings sections',
  },
});

type Tab =
  | 'general' | 'agents' | 'teams' | 'channels' | 'rules' | 'sla' | 'calendars' | 'templates' | 'blacklist' | 'webhooks'
  | 'numbers' | 'ivr' | 'schemes';
const TABS: Tab[] = [
  'rules', 'agents', 'teams', 'channels', 'numbers', 'ivr', 'schemes', 'sla', 'calendars', 'templates', 'blacklist', 'webhooks',
  'general',
];

export function Settings(props: { me: Agent; t: T }) {
  const { t } = props;
  const [tab, setTab] = useState<Tab>('rules');
  const [openRule, setOpenRule] = useState<number | null>(null);
  const [agents, setAgents] = useState<AgentFull[]>([]);
  const [teams, setTeams] = useState<Team[]>([]);
  const [templates, setTemplates] = useState<TemplateDoc[]>([]);
  const [calendars, setCalendars] = useState<CalendarDoc[]>([]);
  const reload = () =>
    Promise.all([
      list<AgentFull>('/api/v1/agents', 'agents').then(setAgents),
      list<Team>('/api/v1/teams', 'teams').then(setTeams),
      list<TemplateDoc>('/api/v1/templates', 'templates').then(setTemplates),
      list<CalendarDoc>('/api/v1/calendars', 'calendars').then(setCalendars),
    ]).then(() => undefined);
  useEffect(() => {
    void reload();
  }, []);
  const lookups: Lookups = { agents, teams, templates, calendars, reload };
  const go = (x: Tab) => {
    setTab(x);
    setOpenRule(null);
  };
  return (
    <main class="settings" aria-label={t.t('settings')}>
      <nav class="subnav" aria-label={s(t, 'nav')}>
        {TABS.map((x) => (
          <button type="button" key={x} class={tab === x ? 'active' : ''} aria-current={tab === x ? 'page' : undefined}
            onClick={() => go(x)}>{s(t, x)}</button>
        ))}
      </nav>
      <section class="screen" aria-labelledby="settings-title">
        <h2 id="settings-title">{s(t, tab)}</h2>
        {tab === 'general' && <General t={t} lookups={lookups} />}
        {tab === 'agents' && <Agents t={t} me={props.me} lookups={lookups} />}
        {tab === 'teams' && <Teams t={t} lookups={lookups} />}
        {tab === 'channels' && <Channels t={t} />}
        {tab === 'numbers' && <PhoneNumbers t={t} lookups={lookups} />}
        {tab === 'ivr' && <IvrMenus t={t} lookups={lookups} />}
        {tab === 'schemes' && <ForwardingSchemes t={t} lookups={lookups} />}
        {tab === 'rules' && <Rules t={t} lookups={lookups} open={openRule} />}
        {tab === 'sla' && <SlaPolicies t={t} lookups={lookups} />}
        {tab === 'calendars' && <Calendars t={t} lookups={lookups} />}
        {tab === 'templates' && <Templates t={t} lookups={lookups} />}
        {tab === 'blacklist' && <Blacklist t={t} lookups={lookups} />}
        {tab === 'webhooks' && (
          <Webhooks t={t} onOpenRule={(id) => { setTab('rules'); setOpenRule(id); }} />
        )}
      </section>
    </main>
  );
}
