// The agent's own settings: name, language (RU/EN; the workspace follows
// it at once) and password. Agents and supervisors may change only these
// of their own (the API enforces it).
import { useState } from 'preact/hooks';
import { call, type Agent } from './api';
import type { Lang, T } from './i18n';

export function Profile(props: { me: Agent; t: T; setLang: (l: Lang) => void }) {
  const { t } = props;
  const [name, setName] = useState(props.me.name);
  const [lang, setLang] = useState<Lang>(props.t.lang);
  const [password, setPassword] = useState('');
  const [again, setAgain] = useState('');
  const [error, setError] = useState('');
  const [saved, setSaved] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setError('');
    setSaved(false);
    if (password && password !== again) {
      setError(t.t('passwordsDiffer'));
      return;
    }
    const body: Record<string, string> = { name, language: lang };
    if (password) body.password = password;
    const r = await call<{ error?: { message: string } }>('PATCH', `/api/v1/agents/${props.me.id}`, body);
    if (r.status === 200) {
      props.me.name = name;
      props.setLang(lang);
      setPassword('');
      setAgain('');
      setSaved(true);
    } else setError(r.json.error?.message ?? t.t('sendFailed'));
  };
  return (
    <main class="profile">
      <form onSubmit={submit} aria-labelledby="profile-title">
        <h2 id="profile-title">{t.t('profile')}</h2>
        <label>
          {t.t('yourName')}
          <input name="name" required maxLength={200} value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          {t.t('language')}
          <select name="language" value={lang} onChange={(e) => setLang((e.target as HTMLSelectElement).value as Lang)}>
            <option value="ru">Русский</option>
            <option value="en">English</option>
          </select>
        </label>
        <label>
          {t.t('newPassword')}
          <input name="password" type="password" autocomplete="new-password" minLength={8} value={password}
            onInput={(e) => setPassword((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          {t.t('repeatPassword')}
          <input name="again" type="password" autocomplete="new-password" value={again}
            onInput={(e) => setAgain((e.target as HTMLInputElement).value)} />
        </label>
        {error && <p class="error" role="alert">{error}</p>}
        {saved && <p class="ok" role="status">{t.t('saved')}</p>}
        <button type="submit">{t.t('save')}</button>
      </form>
    </main>
  );
}
