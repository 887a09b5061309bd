// The configuration resources as the API returns them (docs/openapi.yaml).
export type AgentFull = {
  id: number;
  email: string;
  name: string;
  role: 'agent' | 'supervisor' | 'admin';
  language: string;
  active: boolean;
  routing: { capacity?: number | null; skills?: string[] | null; languages?: string[] | null };
  team_ids: number[];
};

export type TeamRouting = {
  strategy?: 'round_robin' | 'least_busy' | 'manual';
  supervisor_id?: number | null;
  unanswered_minutes?: { chat?: number | null; email?: number | null; call?: number | null } | null;
  sticky_wait_minutes?: number | null;
  calendar_id?: number | null;
  auto_away_after?: number | null;
};

export type Team = { id: number; name: string; routing: TeamRouting; member_ids: number[] };

export type TemplateDoc = { id: number; name: string; shortcut?: string | null; texts: Record<string, string> };

export type Interval = [string, string];
export type CalendarDoc = {
  id: number;
  name: string;
  time_zone: string;
  hours?: Partial<Record<Day, Interval[]>>;
  holidays?: { date: string; recurring?: boolean; name?: string }[];
  working_days?: { date: string; hours: Interval[]; name?: string }[];
};
export const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Day = (typeof DAYS)[number];

export type Lookups = {
  agents: AgentFull[];
  teams: Team[];
  templates: TemplateDoc[];
  calendars: CalendarDoc[];
  reload: () => Promise<void>; /* settled once every list is in */
};

export const PRIORITIES = ['low', 'normal', 'high', 'urgent'] as const;
export const STATUSES = ['new', 'open', 'pending', 'resolved', 'closed'] as const;
