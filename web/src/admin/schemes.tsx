// Forwarding schemes (voice): who rings for a call, step after step —
// agents, teams, phone numbers, SIP addresses, all at once or one after
// another, for so many seconds — and where the call goes when nobody
// answers, or when nobody can be reached at all
// (/api/v1/forwarding-schemes). A phone number points at a scheme for
// business hours, after hours or holidays (numbers.tsx).
import { useState } from 'preact/hooks';
import { strings, type T } from '../i18n';
import { EditorForm, ListScreen, putOrPost, useForm, useListScreen, useLoaded } from './crud';
import { c, Field, Group, intOrNull, ItemSelect, val } from './form';
import {
  DestGroup, destDoc, ds, destState, destText, SCHEME_END_ACTIONS,
  type MenuDoc, type Pickers, type SchemeDoc, type Target, type TargetKind,
} from './destination';
import type { Lookups } from './types';

const s = strings({
  ru: {
    newScheme: 'Новая схема',
    editScheme: 'Схема «{name}»',
    none: 'Схем переадресации пока нет.',
    notRun: 'Голосовой модуль пока не выполняет схемы: звонок на номер со схемой пока завершается.',
    steps: 'Шаги',
    step: 'Шаг {n}',
    target: 'цель {n}',
    addStep: 'Добавить шаг',
    removeStep: 'Убрать шаг',
    addTarget: 'Добавить цель',
    mode: 'Как звонить',
    'm.together': 'всем сразу',
    'm.sequential': 'по очереди',
    seconds: 'Секунд',
    'h.together': 'сколько звонит шаг',
    'h.sequential': 'каждой цели по очереди',
    kind: 'Кому',
    'k.agent': 'оператору',
    'k.team': 'команде',
    'k.number': 'на номер телефона',
    'k.sip_uri': 'на SIP-адрес',
    agent: 'Оператор',
    team: 'Команда',
    number: 'Номер телефона',
    sip_uri: 'SIP-адрес',
    final: 'Если никто не ответил',
    backup: 'Если звонить некому (никто не в сети, нет транка)',
    backupBlank: 'как «Если никто не ответил»',
    sec: 'с',
    then: 'затем',
  },
  en: {
    newScheme: 'New scheme',
    editScheme: 'Scheme “{name}”',
    none: 'No forwarding schemes yet.',
    notRun: 'The voice service does not run schemes yet: a call to a number with a scheme is hung up for now.',
    steps: 'Steps',
    step: 'Step {n}',
    target: 'target {n}',
    addStep: 'Add a step',
    removeStep: 'Remove the step',
    addTarget: 'Add a target',
    mode: 'How to ring',
    'm.together': 'all at once',
    'm.sequential': 'one after another',
    seconds: 'Seconds',
    'h.together': 'how long the step rings',
    'h.sequential': 'each target in turn',
    kind: 'Who',
    'k.agent': 'an agent',
    'k.team': 'a team',
    'k.number': 'a phone number',
    'k.sip_uri': 'a SIP address',
    agent: 'Agent',
    team: 'Team',
    number: 'Phone number',
    sip_uri: 'SIP address',
    final: 'When nobody answers',
    backup: 'When nobody can be reached (no one registered, no trunk)',
    backupBlank: 'as when nobody answers',
    sec: 's',
    then: 'then',
  },
});

const KINDS: TargetKind[] = ['agent', 'team', 'number', 'sip_uri'];
const MAX_STEPS = 10;
const MAX_TARGETS = 20;

let keys = 0;
type TargetState = { k: number; kind: TargetKind; value: string };
type StepState = { k: number; mode: 'together' | 'sequential'; seconds: string; targets: TargetState[] };

function targetState(x: Target): TargetState {
  const kind = KINDS.find((k) => k in x) ?? 'agent';
  const v = x[kind];
  return { k: ++keys, kind, value: v === undefined || v === null ? '' : String(v) };
}

/* The document of a target: ids as numbers (an empty picker as null, for
 * the API to say what is missing), addresses trimmed. */
function targetDoc(x: TargetState): Target {
  if (x.kind === 'agent' || x.kind === 'team')
    return { [x.kind]: x.value === '' ? null : /^\d+$/.test(x.value) ? Number(x.value) : x.value };
  return { [x.kind]: x.value.trim() };
}

const newStep = (): StepState => ({ k: ++keys, mode: 'together', seconds: '15', targets: [{ k: ++keys, kind: 'agent', value: '' }] });

function SchemeEditor(props: { t: T; scheme: SchemeDoc | null; pickers: Pickers; onDone: (saved: boolean) => void }) {
  const { t, pickers } = props;
  const s0 = props.scheme;
  const [name, setName] = useState(s0?.name ?? '');
  const [steps, setSteps] = useState<StepState[]>(() =>
    s0
      ? s0.steps.map((st) => ({ k: ++keys, mode: st.mode, seconds: String(st.seconds ?? ''), targets: st.targets.map(targetState) }))
      : [newStep()],
  );
  const [fin, setFin] = useState(() => destState(s0?.final));
  const [backup, setBackup] = useState(() => destState(s0?.backup));
  const frm = useForm(t);
  const err = frm.err;
  const send = () => {
    const doc: Record<string, unknown> = {
      name,
      steps: steps.map((st) => ({ targets: st.targets.map(targetDoc), mode: st.mode, seconds: intOrNull(st.seconds) })),
    };
    const f = destDoc(fin);
    if (f) doc.final = f;
    const b = destDoc(backup);
    if (b) doc.backup = b;
    return putOrPost('/api/v1/forwarding-schemes', s0?.id, doc);
  };
  const title = s0 ? s(t, 'editScheme').replace('{name}', s0.name) : s(t, 'newScheme');
  const patchStep = (i: number, p: Partial<StepState>) => setSteps(steps.map((x, j) => (j === i ? { ...x, ...p } : x)));
  return (
    <EditorForm t={t} form={frm} title={title} isNew={!s0} send={send} onDone={props.onDone}>
      <Field label={c(t, 'name')} path="name" err={err}>{(a) => <input {...a} value={name} onInput={(e) => setName(val(e))} />}</Field>
      <Group legend={s(t, 'steps')} path="steps" err={err}>
        <ol class="rows fwd-steps">
          {steps.map((st, i) => {
            const n = s(t, 'step').replace('{n}', String(i + 1));
            const at = `steps[${i}]`;
            const patchTarget = (j: number, p: Partial<TargetState>) =>
              patchStep(i, { targets: st.targets.map((x, m) => (m === j ? { ...x, ...p } : x)) });
            return (
              <li key={st.k}>
                <Group legend={n} path={at} err={err} class="fwd-step">
                  <div class="row">
                    <Field label={<><span class="sr">{n}: </span>{s(t, 'mode')}</>} path={`${at}.mode`} err={err}>
                      {(a) => (
                        <select {...a} value={st.mode} onChange={(e) => patchStep(i, { mode: val(e) as StepState['mode'] })}>
                          <option value="together">{s(t, 'm.together')}</option>
                          <option value="sequential">{s(t, 'm.sequential')}</option>
                        </select>
                      )}
                    </Field>
                    <Field label={<><span class="sr">{n}: </span>{s(t, 'seconds')}</>} path={`${at}.seconds`} err={err} class="small"
                      hint={s(t, st.mode === 'sequential' ? 'h.sequential' : 'h.together')}>
                      {(a) => <input {...a} type="number" min={1} max={600} value={st.seconds} onInput={(e) => patchStep(i, { seconds: val(e) })} />}
                    </Field>
                  </div>
                  <Group legend={<span class="sr">{n}: {s(t, 'kind')}</span>} path={`${at}.targets`} err={err} class="fwd-targets">
                    <ol class="rows">
                      {st.targets.map((x, j) => {
                        const tn = `${n}, ${s(t, 'target').replace('{n}', String(j + 1))}`;
                        const tat = `${at}.targets[${j}]`;
                        const lbl = (k: string) => <><span class="sr">{tn}: </span>{k}</>;
                        const setValue = (e: Event) => patchTarget(j, { value: val(e) });
                        return (
                          <li key={x.k} class="row fwd-target">
                            <Field label={lbl(s(t, 'kind'))} path={tat} err={err}>
                              {(a) => (
                                <select {...a} value={x.kind} onChange={(e) => patchTarget(j, { kind: val(e) as TargetKind, value: '' })}>
                                  {KINDS.map((k) => <option key={k} value={k}>{s(t, `k.${k}`)}</option>)}
                                </select>
                              )}
                            </Field>
                            <Field label={lbl(s(t, x.kind))} path={`${tat}.${x.kind}`} err={err} class="grow">
                              {(a) =>
                                x.kind === 'agent' ? (
                                  <ItemSelect {...a} value={x.value} onChange={setValue} blank={ds(t, 'choose')}
                                    items={pickers.agents.filter((y) => y.active)} />
                                ) : x.kind === 'team' ? (
                                  <ItemSelect {...a} value={x.value} onChange={setValue} blank={ds(t, 'choose')} items={pickers.teams} />
                                ) : (
                                  <input {...a} value={x.value} onInput={setValue} autocomplete="off" spellcheck={false}
                                    inputMode={x.kind === 'number' ? 'tel' : undefined}
                                    placeholder={x.kind === 'number' ? '+74951234567' : 'sip:duty@pbx.example.com'} />
                                )
                              }
                            </Field>
                            <button type="button" class="secondary remove" aria-label={`${c(t, 'remove')}: ${tn}`} disabled={st.targets.length <= 1}
                              onClick={() => patchStep(i, { targets: st.targets.filter((_, m) => m !== j) })}>×</button>
                          </li>
                        );
                      })}
                    </ol>
                    <button type="button" class="secondary" disabled={st.targets.length >= MAX_TARGETS} aria-label={`${s(t, 'addTarget')}: ${n}`}
                      onClick={() => patchStep(i, { targets: [...st.targets, { k: ++keys, kind: 'agent', value: '' }] })}>{s(t, 'addTarget')}</button>
                  </Group>
                  <button type="button" class="secondary" disabled={steps.length <= 1} aria-label={`${s(t, 'removeStep')}: ${n}`}
                    onClick={() => setSteps(steps.filter((_, j) => j !== i))}>{s(t, 'removeStep')}</button>
                </Group>
              </li>
            );
          })}
        </ol>
        <button type="button" class="secondary" disabled={steps.length >= MAX_STEPS} onClick={() => setSteps([...steps, newStep()])}>
          {s(t, 'addStep')}
        </button>
      </Group>
      <DestGroup t={t} legend={s(t, 'final')} path="final" err={err} value={fin} onChange={setFin}
        actions={SCHEME_END_ACTIONS} pickers={pickers} blank={ds(t, 'choose')} />
      <DestGroup t={t} legend={s(t, 'backup')} path="backup" err={err} value={backup} onChange={setBackup}
        actions={SCHEME_END_ACTIONS} pickers={pickers} blank={s(t, 'backupBlank')} />
    </EditorForm>
  );
}

/* "Anna, Boris · 15 s → Sales · 20 s · one after another → then: voicemail: Sales" */
function summary(t: T, x: SchemeDoc, p: Pickers): string {
  const name = (xs: { id: number; name: string }[], id: unknown) => xs.find((y) => y.id === id)?.name ?? `#${String(id)}`;
  const who = (tg: Target) =>
    tg.agent !== undefined ? name(p.agents, tg.agent) : tg.team !== undefined ? name(p.teams, tg.team) : String(tg.number ?? tg.sip_uri ?? '');
  const steps = x.steps.map((st) => {
    const seq = st.mode === 'sequential' ? ` · ${s(t, 'm.sequential')}` : '';
    return `${st.targets.map(who).join(', ')} · ${st.seconds} ${s(t, 'sec')}${seq}`;
  });
  return [...steps, `${s(t, 'then')}: ${destText(t, x.final, p)}`].join(' → ');
}

export function ForwardingSchemes(props: { t: T; lookups: Lookups }) {
  const { t, lookups } = props;
  const [schemes, load] = useLoaded<SchemeDoc>('/api/v1/forwarding-schemes', 'forwarding_schemes');
  const [menus] = useLoaded<MenuDoc>('/api/v1/ivr-menus', 'ivr_menus');
  const screen = useListScreen<SchemeDoc>(t, '/api/v1/forwarding-schemes', load);
  const pickers: Pickers = { teams: lookups.teams, agents: lookups.agents, menus: menus ?? [], schemes: schemes ?? [] };
  return (
    <>
      <p class="muted">{s(t, 'notRun')}</p>
      <ListScreen t={t} screen={screen} items={schemes} newLabel={s(t, 'newScheme')} empty={s(t, 'none')} deletable
        editor={(x, onDone) => <SchemeEditor t={t} scheme={x} pickers={pickers} onDone={onDone} />}
        row={(x) => ({
          data: { 'data-scheme': x.id },
          what: (
            <>
              <strong>{x.name}</strong> <span class="badge">{c(t, 'id')} {x.id}</span>
              <span class="keys">{summary(t, x, pickers)}</span>
            </>
          ),
        })} />
    </>
  );
}
