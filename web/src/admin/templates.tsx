// Message templates: a name, a shortcut, one text per language, and the
// placeholders the server knows (an unknown one is refused on save).
import { useRef, useState } from 'preact/hooks';
import { strings, type T } from '../i18n';
import { EditorForm, ListScreen, putOrPost, useForm, useListScreen } from './crud';
import { c, Field, Group, val } from './form';
import type { Lookups, TemplateDoc } from './types';

const s = strings({
  ru: {
    newTemplate: 'Новый шаблон',
    editTemplate: 'Шаблон «{name}»',
    shortcut: 'Сокращение (агенты набирают его в ответе)',
    texts: 'Тексты по языкам',
    lang: 'Код языка',
    text: 'Текст',
    textFor: 'Текст ({lang})',
    addLanguage: 'Добавить язык',
    removeLanguage: 'Убрать язык',
    placeholders: 'Подстановки: нажмите, чтобы вставить в текст',
    none: 'Шаблонов пока нет.',
  },
  en: {
    newTemplate: 'New template',
    editTemplate: 'Template “{name}”',
    shortcut: 'Shortcut (agents type it in a reply)',
    texts: 'Texts by language',
    lang: 'Language code',
    text: 'Text',
    textFor: 'Text ({lang})',
    addLanguage: 'Add language',
    removeLanguage: 'Remove language',
    placeholders: 'Placeholders: press one to insert it into the text',
    none: 'No templates yet.',
  },
});

/* The names the server's template parser accepts (docs/openapi.yaml, Template). */
export const PLACEHOLDERS = [
  'contact.name', 'contact.first_name', 'contact.phone', 'contact.email', 'ticket.number', 'ticket.subject',
  'ticket.status', 'ticket.priority', 'ticket.channel', 'agent.name', 'agent.first_name', 'team.name',
  'business_hours.next_open', 'csat.scale', 'company.name',
];

let keys = 0;
type Row = { k: number; lang: string; text: string };

function TemplateEditor(props: { t: T; tpl: TemplateDoc | null; onDone: (saved: boolean) => void }) {
  const { t } = props;
  const p = props.tpl;
  const [name, setName] = useState(p?.name ?? '');
  const [shortcut, setShortcut] = useState(p?.shortcut ?? '');
  const [rows, setRows] = useState<Row[]>(() =>
    p ? Object.entries(p.texts).map(([lang, text]) => ({ k: ++keys, lang, text })) : [{ k: ++keys, lang: t.lang, text: '' }],
  );
  const frm = useForm(t);
  const err = frm.err;
  const last = useRef<{ i: number; el: HTMLTextAreaElement } | null>(null);
  const insert = (name: string) => {
    const target = last.current ?? { i: 0, el: frm.ref.current?.querySelector('textarea') as HTMLTextAreaElement };
    if (!target.el) return;
    const el = target.el;
    const at = el.selectionStart ?? el.value.length;
    const text = el.value.slice(0, at) + `{{${name}}}` + el.value.slice(el.selectionEnd ?? at);
    setRows(rows.map((r, j) => (j === target.i ? { ...r, text } : r)));
    setTimeout(() => {
      el.focus();
      el.selectionStart = el.selectionEnd = at + name.length + 4;
    }, 0);
  };
  const send = () => {
    const texts: Record<string, string> = {};
    for (const r of rows) texts[r.lang.trim()] = r.text;
    const doc: Record<string, unknown> = { name, texts };
    if (shortcut.trim()) doc.shortcut = shortcut.trim();
    return putOrPost('/api/v1/templates', p?.id, doc);
  };
  const title = p ? s(t, 'editTemplate').replace('{name}', p.name) : s(t, 'newTemplate');
  return (
    <EditorForm t={t} form={frm} title={title} isNew={!p} send={send} onDone={props.onDone}>
      <Field label={c(t, 'name')} path="name" err={err}>{(a) => <input {...a} value={name} onInput={(e) => setName(val(e))} />}</Field>
      <Field label={s(t, 'shortcut')} path="shortcut" err={err}>
        {(a) => <input {...a} value={shortcut} onInput={(e) => setShortcut(val(e))} />}
      </Field>
      <Group legend={s(t, 'placeholders')} path="" err={null} class="inline placeholders">
        {PLACEHOLDERS.map((x) => (
          <button type="button" class="chip" key={x} onClick={() => insert(x)}>{`{{${x}}}`}</button>
        ))}
      </Group>
      <Group legend={s(t, 'texts')} path="texts" err={err}>
        <ol class="rows">
          {rows.map((r, i) => (
            <li key={r.k} class="text-row">
              <Field label={<><span class="sr">{s(t, 'textFor').replace('{lang}', r.lang)}: </span>{s(t, 'lang')}</>} path={`texts.${r.lang.trim()}.lang`} err={err} class="small">
                {(a) => <input {...a} value={r.lang} onInput={(e) => setRows(rows.map((x, j) => (j === i ? { ...x, lang: val(e) } : x)))} />}
              </Field>
              <Field label={s(t, 'textFor').replace('{lang}', r.lang)} path={`texts.${r.lang.trim()}`} err={err} class="grow">
                {(a) => (
                  <textarea {...a} rows={3} value={r.text}
                    onFocus={(e) => { last.current = { i, el: e.target as HTMLTextAreaElement }; }}
                    onInput={(e) => setRows(rows.map((x, j) => (j === i ? { ...x, text: val(e) } : x)))} />
                )}
              </Field>
              {rows.length > 1 && (
                <button type="button" class="secondary remove" aria-label={`${s(t, 'removeLanguage')}: ${r.lang}`}
                  onClick={() => { last.current = null; setRows(rows.filter((_, j) => j !== i)); }}>×</button>
              )}
            </li>
          ))}
        </ol>
        <button type="button" class="secondary" onClick={() => setRows([...rows, { k: ++keys, lang: '', text: '' }])}>{s(t, 'addLanguage')}</button>
      </Group>
    </EditorForm>
  );
}

export function Templates(props: { t: T; lookups: Lookups }) {
  const { t, lookups } = props;
  const screen = useListScreen<TemplateDoc>(t, '/api/v1/templates', lookups.reload);
  return (
    <ListScreen t={t} screen={screen} items={lookups.templates} newLabel={s(t, 'newTemplate')} empty={s(t, 'none')} deletable
      editor={(x, onDone) => <TemplateEditor t={t} tpl={x} onDone={onDone} />}
      row={(x) => ({
        what: (
          <>
            <strong>{x.name}</strong> {x.shortcut && <span class="badge">/{x.shortcut}</span>}
            <span class="muted">{Object.keys(x.texts).join(', ')}</span>
          </>
        ),
      })} />
  );
}
