"""Phone numbers (DIDs), IVR menus and forwarding schemes over the REST API: validated by
the engine's own parsers (engine/voice_config.h), references checked against the store,
menus checked together for depth (at most 3) and loops, a number's digits unique; a
number answered by a scheme in each calendar period; menus and schemes in use cannot be
deleted; errors name the field; agents read, admins write; `switchboard config
export|import` carries them."""
import json
import os
import unittest

from sbtest import DEMO_ADMIN, DEMO_ANNA, Daemon


def menu(name, options, **extra):
    return dict({"name": name, "prompt": "menu_main", "options": options}, **extra)


def submenu(digit, menu_id):
    return {"digit": digit, "action": "submenu", "menu_id": menu_id}


def step(targets, mode="together", seconds=15):
    return {"targets": targets, "mode": mode, "seconds": seconds}


def scheme(name, steps, final=None, **extra):
    return dict({"name": name, "steps": steps, "final": final or {"action": "voicemail", "team_id": 1}}, **extra)


SCHEMES = "/api/v1/forwarding-schemes"


class VoiceConfigTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon()
        cls.d.__enter__()
        cls.admin = cls.d.token(DEMO_ADMIN[0])
        cls.anna = cls.d.token(DEMO_ANNA[0])
        cls.d.cli("config", "export", os.path.join(cls.d.tmp, "before.json"), check=True)

    @classmethod
    def tearDownClass(cls):
        if os.environ.get("SB_DEBUG"):
            print(cls.d.log()[-3000:])
        cls.d.__exit__(None, None, None)

    def req(self, method, path, body=None, token=None):
        return self.d.req(method, path, body, token=token or self.admin)

    def create(self, path, body, key):
        st, _, b = self.req("POST", path, body)
        self.assertEqual(st, 201, (body, b))
        return b[key]

    def assert_invalid(self, path, body, field, method="POST", status=422, contains=None):
        st, _, b = self.req(method, path, body)
        self.assertEqual(st, status, (body, b))
        self.assertIn(f"field '{field}'", b["error"]["message"], b)
        if contains:
            self.assertIn(contains, b["error"]["message"], b)
        return b

    def test_demo_ivr(self):
        # The demo seed: DID 100 answered by an IVR (1 → Sales, 2 → Support, 0 → operator).
        st, _, b = self.req("GET", "/api/v1/numbers", token=self.anna)
        self.assertEqual(st, 200, b)
        demo = [n for n in b["numbers"] if n["number"] == "100"]
        self.assertEqual(len(demo), 1, b)
        self.assertEqual(demo[0]["entry"]["action"], "menu")
        st, _, b = self.req("GET", f"/api/v1/ivr-menus/{demo[0]['entry']['menu_id']}", token=self.anna)
        self.assertEqual(st, 200, b)
        options = {o["digit"]: o for o in b["ivr_menu"]["options"]}
        st, _, teams = self.req("GET", "/api/v1/teams")
        names = {t["id"]: t["name"] for t in teams["teams"]}
        self.assertEqual(names[options["1"]["team_id"]], "Sales")
        self.assertEqual(names[options["2"]["team_id"]], "Support")
        self.assertEqual(options["0"]["action"], "operator")
        self.assertTrue(b["ivr_menu"]["extension_dialing"])
        # The seeded documents pass the same validation as the API's (a PUT of themselves).
        st, _, b2 = self.req("PUT", f"/api/v1/ivr-menus/{b['ivr_menu']['id']}", b["ivr_menu"])
        self.assertEqual(st, 200, b2)
        st, _, b2 = self.req("PUT", f"/api/v1/numbers/{demo[0]['id']}", demo[0])
        self.assertEqual(st, 200, b2)

    def test_numbers_and_menus_round_trip(self):
        sub = self.create("/api/v1/ivr-menus", menu("Поддержка", [
            {"digit": "1", "action": "agent", "agent_id": 3},
            {"digit": "*", "action": "back"}, {"digit": "#", "action": "repeat"}],
            prompt="menu_support", fallback={"action": "voicemail", "team_id": 2}), "ivr_menu")
        top = self.create("/api/v1/ivr-menus", menu("Главное", [
            {"digit": "1", "action": "queue", "team_id": 1},
            {"digit": "2", "action": "submenu", "menu_id": sub["id"]},
            {"digit": "0", "action": "operator"}],
            extension_dialing=True, timeout_seconds=5, operator={"action": "queue", "team_id": 2}), "ivr_menu")
        self.assertEqual(top["options"][1]["menu_id"], sub["id"])
        cal = self.create("/api/v1/calendars", {"name": "Офис", "time_zone": "Europe/Moscow",
                                                "hours": {"mon": [["09:00", "18:00"]]}}, "calendar")
        num = self.create("/api/v1/numbers", {
            "name": "Main line", "number": "7100", "language": "ru",
            "entry": {"action": "menu", "menu_id": top["id"]}, "calendar_id": cal["id"],
            "after_hours": {"action": "voicemail", "team_id": 1, "prompt": "closed"}}, "number")
        self.assertEqual(num["number"], "7100")
        # Every agent reads; only admins write.
        st, _, b = self.req("GET", "/api/v1/numbers", token=self.anna)
        self.assertEqual(st, 200, b)
        self.assertIn(num["id"], [n["id"] for n in b["numbers"]])
        st, _, b = self.req("GET", f"/api/v1/ivr-menus/{top['id']}", token=self.anna)
        self.assertEqual((st, b["ivr_menu"]["name"]), (200, "Главное"), b)
        for method, path in (("POST", "/api/v1/ivr-menus"), ("PUT", f"/api/v1/ivr-menus/{top['id']}"),
                             ("POST", "/api/v1/numbers"), ("PUT", f"/api/v1/numbers/{num['id']}")):
            st, _, b = self.req(method, path, menu("x", []), token=self.anna)
            self.assertEqual(st, 403, (method, path, b))
        st, _, b = self.req("DELETE", f"/api/v1/numbers/{num['id']}", token=self.anna)
        self.assertEqual(st, 403, b)
        # Replace: the whole document; the id in the body must be the path's.
        st, _, b = self.req("PUT", f"/api/v1/numbers/{num['id']}",
                            {"name": "Main line", "number": "7100", "language": "en",
                             "entry": {"action": "queue", "team_id": 1}})
        self.assertEqual(st, 200, b)
        self.assertEqual((b["number"]["language"], "calendar_id" in b["number"]), ("en", False))
        self.assert_invalid(f"/api/v1/numbers/{num['id']}", {"id": num["id"] + 1, "name": "x", "number": "1",
                                                            "entry": {"action": "hangup"}}, "id", method="PUT")
        st, _, b = self.req("PUT", "/api/v1/ivr-menus/999", menu("x", []))
        self.assertEqual(st, 404, b)
        st, _, b = self.req("POST", "/api/v1/ivr-menus", dict(menu("x", []), id=top["id"]))
        self.assertEqual(st, 409, b)
        # A menu in use cannot go; neither can a calendar a number uses.
        self.req("PUT", f"/api/v1/numbers/{num['id']}",
                 {"name": "Main line", "number": "7100", "entry": {"action": "menu", "menu_id": top["id"]},
                  "calendar_id": cal["id"], "after_hours": {"action": "hangup"}})
        st, _, b = self.req("DELETE", f"/api/v1/ivr-menus/{sub['id']}")
        self.assertEqual(st, 409, b)
        self.assertIn(f"IVR menu {top['id']}", b["error"]["message"])
        st, _, b = self.req("DELETE", f"/api/v1/ivr-menus/{top['id']}")
        self.assertEqual(st, 409, b)
        self.assertIn(f"phone number {num['id']}", b["error"]["message"])
        st, _, b = self.req("DELETE", f"/api/v1/calendars/{cal['id']}")
        self.assertEqual(st, 409, b)
        self.assertIn("phone_number", b["error"]["message"])
        # Delete in order: the number, then the menus.
        for path in (f"/api/v1/numbers/{num['id']}", f"/api/v1/ivr-menus/{top['id']}",
                     f"/api/v1/ivr-menus/{sub['id']}", f"/api/v1/calendars/{cal['id']}"):
            st, _, b = self.req("DELETE", path)
            self.assertEqual(st, 200, (path, b))
            self.assertEqual(self.req("GET", path)[0], 404)

    def test_validation_names_the_field(self):
        ok = menu("ok", [{"digit": "1", "action": "queue", "team_id": 1}])
        bad_menus = [
            (menu("m", [{"digit": "A", "action": "repeat"}]), "options[0].digit"),
            (menu("m", [{"digit": "1", "action": "repeat"}, {"digit": "1", "action": "back"}]), "options[1].digit"),
            (menu("m", [{"digit": "1", "action": "queue", "team_id": 999}]), "options[0].team_id"),
            (menu("m", [{"digit": "1", "action": "agent", "agent_id": 999}]), "options[0].agent_id"),
            (menu("m", [{"digit": "1", "action": "submenu", "menu_id": 999}]), "options[0].menu_id"),
            (menu("m", [{"digit": "1", "action": "fly"}]), "options[0].action"),
            (dict(ok, fallback={"action": "voicemail", "team_id": 999}), "fallback.team_id"),
            (dict(ok, timeout_seconds=0), "timeout_seconds"),
            (dict(ok, prompt="Main Menu"), "prompt"),
            (dict(ok, colour="red"), "colour"),
            ({k: v for k, v in ok.items() if k != "name"}, "name"),
        ]
        for body, field in bad_menus:
            self.assert_invalid("/api/v1/ivr-menus", body, field)
        st, _, b = self.req("GET", "/api/v1/ivr-menus")
        before = len(b["ivr_menus"])
        # Depth: 1 > 2 > 3 is fine, a fourth level is refused, naming the option that adds it.
        m3 = self.create("/api/v1/ivr-menus", menu("level 3", []), "ivr_menu")
        m2 = self.create("/api/v1/ivr-menus", menu("level 2", [submenu("1", m3["id"])]), "ivr_menu")
        m1 = self.create("/api/v1/ivr-menus", menu("level 1", [submenu("1", m2["id"])]), "ivr_menu")
        self.assert_invalid("/api/v1/ivr-menus", menu("level 0", [{"digit": "1", "action": "hangup"},
                                                                  submenu("2", m1["id"])]),
                            "options[1].menu_id", contains="at most 3")
        m4 = self.create("/api/v1/ivr-menus", menu("level 4", []), "ivr_menu")
        self.assert_invalid(f"/api/v1/ivr-menus/{m3['id']}", menu("level 3", [submenu("5", m4["id"])]),
                            "options[0].menu_id", method="PUT", contains="4 levels")
        # Loops: to itself, and back up through another menu.
        self.assert_invalid(f"/api/v1/ivr-menus/{m4['id']}", menu("level 4", [submenu("1", m4["id"])]),
                            "options[0].menu_id", method="PUT", contains="loop")
        self.assert_invalid(f"/api/v1/ivr-menus/{m3['id']}", menu("level 3", [submenu("9", m2["id"])]),
                            "options[0].menu_id", method="PUT", contains="loop")
        st, _, b = self.req("GET", f"/api/v1/ivr-menus/{m3['id']}")
        self.assertEqual(b["ivr_menu"]["options"], [])  # nothing changed
        st, _, b = self.req("GET", "/api/v1/ivr-menus")
        self.assertEqual(len(b["ivr_menus"]), before + 4)
        # Numbers.
        entry = {"action": "menu", "menu_id": m1["id"]}
        good = {"name": "n", "number": "7200", "entry": entry}
        bad_numbers = [
            (dict(good, number="72a0"), "number"),
            (dict(good, number=""), "number"),
            (dict(good, language="de"), "language"),
            ({k: v for k, v in good.items() if k != "entry"}, "entry"),
            (dict(good, entry={"action": "submenu", "menu_id": m1["id"]}), "entry.action"),
            (dict(good, entry={"action": "menu", "menu_id": 999}), "entry.menu_id"),
            (dict(good, entry={"action": "queue", "team_id": 999}), "entry.team_id"),
            (dict(good, calendar_id=999), "calendar_id"),
            (dict(good, after_hours={"action": "hangup"}), "after_hours"),
            (dict(good, operator={"action": "agent", "agent_id": 999}), "operator.agent_id"),
        ]
        for body, field in bad_numbers:
            self.assert_invalid("/api/v1/numbers", body, field)
        n = self.create("/api/v1/numbers", good, "number")
        self.assert_invalid("/api/v1/numbers", dict(good, name="twin"), "number", contains="already")
        st, _, b = self.req("PUT", f"/api/v1/numbers/{n['id']}", dict(good, name="same digits, same number"))
        self.assertEqual(st, 200, b)
        for path in (f"/api/v1/numbers/{n['id']}", f"/api/v1/ivr-menus/{m1['id']}",
                     f"/api/v1/ivr-menus/{m2['id']}", f"/api/v1/ivr-menus/{m3['id']}",
                     f"/api/v1/ivr-menus/{m4['id']}"):
            self.assertEqual(self.req("DELETE", path)[0], 200, path)

    def test_export_import_round_trip(self):
        sub = self.create("/api/v1/ivr-menus", menu("Экспорт 2", [{"digit": "*", "action": "back"}]), "ivr_menu")
        top = self.create("/api/v1/ivr-menus", menu("Экспорт 1", [submenu("2", sub["id"])]), "ivr_menu")
        num = self.create("/api/v1/numbers", {"name": "Export", "number": "7300",
                                              "entry": {"action": "menu", "menu_id": top["id"]}}, "number")
        path = os.path.join(self.d.tmp, "voice.json")
        self.d.cli("config", "export", path, check=True)
        with open(path, encoding="utf-8") as f:
            setup = json.load(f)
        self.assertIn(num["id"], [n["id"] for n in setup["numbers"]])
        self.assertEqual({m["id"] for m in setup["ivr_menus"]} >= {top["id"], sub["id"]}, True)

        def try_import(doc):
            with open(path, "w", encoding="utf-8") as f:
                json.dump(doc, f, ensure_ascii=False)
            return self.d.cli("config", "import", path)

        # A number naming a menu the file lacks, a loop, duplicate digits: refused, nothing changes.
        broken = json.loads(json.dumps(setup))
        broken["ivr_menus"] = [m for m in broken["ivr_menus"] if m["id"] != top["id"]]
        broken["ivr_menus"] = [m for m in broken["ivr_menus"] if not any(
            o.get("menu_id") == top["id"] for o in m.get("options", []))]
        p = try_import(broken)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn(f"IVR menu {top['id']} is not in the file", p.stderr)
        broken = json.loads(json.dumps(setup))
        for m in broken["ivr_menus"]:
            if m["id"] == sub["id"]:
                m["options"].append(submenu("1", top["id"]))
        p = try_import(broken)
        self.assertEqual(p.returncode, 1)
        self.assertIn("ivr_menus[", p.stderr)
        self.assertIn("loop", p.stderr)
        broken = json.loads(json.dumps(setup))
        broken["numbers"].append(dict(broken["numbers"][-1], id=900))
        p = try_import(broken)
        self.assertEqual(p.returncode, 1)
        self.assertIn("numbers[", p.stderr)
        self.assertIn(".number:", p.stderr)
        self.assertEqual(self.req("GET", f"/api/v1/numbers/{num['id']}")[0], 200)
        # The good file, edited, replaces everything; exporting again gives it back.
        for n in setup["numbers"]:
            if n["id"] == num["id"]:
                n["name"] = "Imported"
        p = try_import(setup)
        self.assertEqual(p.returncode, 0, p.stderr)
        st, _, b = self.req("GET", f"/api/v1/numbers/{num['id']}")
        self.assertEqual((st, b["number"]["name"]), (200, "Imported"))
        again = json.loads(self.d.cli("config", "export", "-", check=True).stdout)
        self.assertEqual(again["numbers"], setup["numbers"])
        self.assertEqual(again["ivr_menus"], setup["ivr_menus"])
        # Back to what the other tests expect.
        with open(os.path.join(self.d.tmp, "before.json"), encoding="utf-8") as f:
            before = json.load(f)
        p = try_import(before)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_schemes_round_trip(self):
        # "Two SDRs 15 s, then all of Sales, a number and a SIP phone in turn, 20 s each,
        # then voicemail; the backup when nobody can be reached at all."
        body = scheme("Продажи", [
            step([{"agent": 2}, {"agent": 3}]),
            step([{"team": 1}, {"number": "+74951234567"}, {"sip_uri": "sip:duty@pbx.example.com"}],
                 mode="sequential", seconds=20)],
            backup={"action": "hangup", "prompt": "sorry"})
        s = self.create(SCHEMES, body, "forwarding_scheme")
        self.assertEqual(s, dict(body, id=s["id"]))
        # Every agent reads; only admins write.
        st, _, b = self.req("GET", SCHEMES, token=self.anna)
        self.assertEqual(st, 200, b)
        self.assertIn(s, b["forwarding_schemes"])
        st, _, b = self.req("GET", f"{SCHEMES}/{s['id']}", token=self.anna)
        self.assertEqual((st, b["forwarding_scheme"]), (200, s), b)
        for method, path in (("POST", SCHEMES), ("PUT", f"{SCHEMES}/{s['id']}"), ("DELETE", f"{SCHEMES}/{s['id']}")):
            st, _, b = self.req(method, path, None if method == "DELETE" else body, token=self.anna)
            self.assertEqual(st, 403, (method, path, b))
        # Replace: the whole document (no backup now); the id in the body must be the path's.
        body2 = scheme("Продажи", [step([{"agent": 3}, {"agent": 2}], mode="sequential", seconds=600)],
                       final={"action": "menu", "menu_id": 1})
        st, _, b = self.req("PUT", f"{SCHEMES}/{s['id']}", body2)
        self.assertEqual((st, b.get("forwarding_scheme")), (200, dict(body2, id=s["id"])), b)
        self.assert_invalid(f"{SCHEMES}/{s['id']}", dict(body2, id=s["id"] + 1), "id", method="PUT")
        st, _, b = self.req("PUT", f"{SCHEMES}/999", body2)
        self.assertEqual(st, 404, b)
        st, _, b = self.req("POST", SCHEMES, dict(body2, id=s["id"]))
        self.assertEqual(st, 409, b)
        self.d.restart()
        st, _, b = self.req("GET", f"{SCHEMES}/{s['id']}")
        self.assertEqual((st, b["forwarding_scheme"]), (200, dict(body2, id=s["id"])), b)
        st, _, b = self.req("DELETE", f"{SCHEMES}/{s['id']}")
        self.assertEqual((st, b), (200, {"deleted": {"kind": "forwarding_scheme", "id": s["id"]}}))
        self.assertEqual(self.req("GET", f"{SCHEMES}/{s['id']}")[0], 404)

    def test_scheme_validation_names_the_field(self):
        one = step([{"agent": 3}])
        bad = [
            ({"name": "s", "final": {"action": "hangup"}}, "steps"),
            (scheme("s", []), "steps"),
            (scheme("s", [one] * 11), "steps"),
            (scheme("s", [step([{"agent": a} for a in range(1, 22)])]), "steps[0].targets"),
            (scheme("s", [step([])]), "steps[0].targets"),
            (scheme("s", [step([{"agent": 3}, {"agent": 999}])]), "steps[0].targets[1].agent"),
            (scheme("s", [one, step([{"team": 999}])]), "steps[1].targets[0].team"),
            (scheme("s", [step([{"agent": 3}, {"agent": 3}])]), "steps[0].targets[1].agent"),
            (scheme("s", [step([{"agent": 3, "team": 1}])]), "steps[0].targets[0]"),
            (scheme("s", [step([{"phone": "+7495"}])]), "steps[0].targets[0].phone"),
            (scheme("s", [step([{"number": "+7 495 123"}])]), "steps[0].targets[0].number"),
            (scheme("s", [step([{"sip_uri": "duty@pbx.example.com"}])]), "steps[0].targets[0].sip_uri"),
            (scheme("s", [step([{"agent": 3}], mode="everyone")]), "steps[0].mode"),
            (scheme("s", [step([{"agent": 3}], seconds=0)]), "steps[0].seconds"),
            (scheme("s", [one, step([{"agent": 2}], seconds=601)]), "steps[1].seconds"),
            (scheme("s", [dict(one, delay=5)]), "steps[0].delay"),
            ({"name": "s", "steps": [one]}, "final"),
            (scheme("s", [one], final={"action": "scheme", "scheme_id": 1}), "final.action"),
            (scheme("s", [one], final={"action": "submenu", "menu_id": 1}), "final.action"),
            (scheme("s", [one], final={"action": "menu", "menu_id": 999}), "final.menu_id"),
            (scheme("s", [one], backup={"action": "voicemail", "team_id": 999}), "backup.team_id"),
            (scheme("s", [one], colour="red"), "colour"),
            (dict(scheme("s", [one]), name=""), "name"),
        ]
        st, _, b = self.req("GET", SCHEMES)
        before = len(b["forwarding_schemes"])
        for body, field in bad:
            self.assert_invalid(SCHEMES, body, field)
        st, _, b = self.req("GET", SCHEMES)
        self.assertEqual(len(b["forwarding_schemes"]), before)
        # Where a scheme may answer: a number's entry, after hours and holidays; not its
        # operator, not a menu's key, and the scheme must exist.
        self.assert_invalid("/api/v1/numbers", {"name": "n", "number": "7400",
                                                "entry": {"action": "scheme", "scheme_id": 999}},
                            "entry.scheme_id", contains="forwarding scheme 999 does not exist")
        s = self.create(SCHEMES, scheme("ok", [one]), "forwarding_scheme")
        self.assert_invalid("/api/v1/numbers", {"name": "n", "number": "7400", "entry": {"action": "hangup"},
                                                "operator": {"action": "scheme", "scheme_id": s["id"]}},
                            "operator.action")
        self.assert_invalid("/api/v1/ivr-menus", menu("m", [{"digit": "1", "action": "scheme", "scheme_id": s["id"]}]),
                            "options[0].action")
        self.assertEqual(self.req("DELETE", f"{SCHEMES}/{s['id']}")[0], 200)

    def test_number_answered_by_schemes_per_period(self):
        cal = self.create("/api/v1/calendars", {"name": "Схемы", "time_zone": "Europe/Moscow",
                                                "hours": {"mon": [["09:00", "18:00"]]},
                                                "holidays": [{"date": "2026-01-01", "recurring": True}]}, "calendar")
        day = self.create(SCHEMES, scheme("День", [step([{"agent": 2}, {"agent": 3}]), step([{"team": 1}])]),
                          "forwarding_scheme")
        night = self.create(SCHEMES, scheme("Ночь", [step([{"number": "+74951234567"}], seconds=30)],
                                            final={"action": "hangup"}), "forwarding_scheme")
        holiday = self.create(SCHEMES, scheme("Праздник", [step([{"sip_uri": "sip:duty@pbx.example.com"}])]),
                              "forwarding_scheme")
        doc = {"name": "Продажи", "number": "7500", "language": "ru",
               "entry": {"action": "scheme", "scheme_id": day["id"]}, "calendar_id": cal["id"],
               "after_hours": {"action": "scheme", "scheme_id": night["id"], "prompt": "closed"},
               "holidays": {"action": "scheme", "scheme_id": holiday["id"]}}
        num = self.create("/api/v1/numbers", doc, "number")
        st, _, b = self.req("GET", f"/api/v1/numbers/{num['id']}")
        self.assertEqual((st, b["number"]), (200, dict(doc, id=num["id"])), b)
        # In use: neither the schemes nor a menu a scheme ends in can go.
        for sch in (day, night, holiday):
            st, _, b = self.req("DELETE", f"{SCHEMES}/{sch['id']}")
            self.assertEqual(st, 409, b)
            self.assertEqual(b["error"]["message"],
                             f"forwarding scheme {sch['id']} is used by phone number {num['id']}")
        m = self.create("/api/v1/ivr-menus", menu("После схемы", []), "ivr_menu")
        st, _, b = self.req("PUT", f"{SCHEMES}/{night['id']}",
                            scheme("Ночь", [step([{"number": "+74951234567"}], seconds=30)],
                                   final={"action": "menu", "menu_id": m["id"]}))
        self.assertEqual(st, 200, b)
        st, _, b = self.req("DELETE", f"/api/v1/ivr-menus/{m['id']}")
        self.assertEqual(st, 409, b)
        self.assertEqual(b["error"]["message"], f"IVR menu {m['id']} is used by forwarding scheme {night['id']}")
        # Without its holidays entry the number no longer uses that scheme.
        del doc["holidays"]
        st, _, b = self.req("PUT", f"/api/v1/numbers/{num['id']}", doc)
        self.assertEqual(st, 200, b)
        self.assertEqual(self.req("DELETE", f"{SCHEMES}/{holiday['id']}")[0], 200)
        for path in (f"/api/v1/numbers/{num['id']}", f"{SCHEMES}/{day['id']}", f"{SCHEMES}/{night['id']}",
                     f"/api/v1/ivr-menus/{m['id']}", f"/api/v1/calendars/{cal['id']}"):
            st, _, b = self.req("DELETE", path)
            self.assertEqual(st, 200, (path, b))

    def test_export_import_carries_schemes(self):
        s = self.create(SCHEMES, scheme("Экспорт", [step([{"team": 2}], mode="sequential")]), "forwarding_scheme")
        num = self.create("/api/v1/numbers", {"name": "Export scheme", "number": "7600",
                                              "entry": {"action": "scheme", "scheme_id": s["id"]}}, "number")
        path = os.path.join(self.d.tmp, "schemes.json")
        self.d.cli("config", "export", path, check=True)
        with open(path, encoding="utf-8") as f:
            setup = json.load(f)
        self.assertIn(dict(scheme("Экспорт", [step([{"team": 2}], mode="sequential")]), id=s["id"]),
                      setup["forwarding_schemes"])
        # A number naming a scheme the file lacks is refused; nothing changes.
        broken = json.loads(json.dumps(setup))
        broken["forwarding_schemes"] = []
        with open(path, "w", encoding="utf-8") as f:
            json.dump(broken, f, ensure_ascii=False)
        p = self.d.cli("config", "import", path)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn(f"forwarding scheme {s['id']} is not in the file", p.stderr)
        # The good file puts everything back as it was.
        with open(path, "w", encoding="utf-8") as f:
            json.dump(setup, f, ensure_ascii=False)
        p = self.d.cli("config", "import", path)
        self.assertEqual(p.returncode, 0, p.stderr)
        st, _, b = self.req("GET", f"{SCHEMES}/{s['id']}")
        self.assertEqual(st, 200, b)
        for path in (f"/api/v1/numbers/{num['id']}", f"{SCHEMES}/{s['id']}"):
            self.assertEqual(self.req("DELETE", path)[0], 200, path)

    def test_survives_restart(self):
        m = self.create("/api/v1/ivr-menus", menu("Перезапуск", []), "ivr_menu")
        self.d.restart()
        st, _, b = self.req("GET", f"/api/v1/ivr-menus/{m['id']}")
        self.assertEqual((st, b["ivr_menu"]["name"]), (200, "Перезапуск"), b)
        self.assertEqual(self.req("DELETE", f"/api/v1/ivr-menus/{m['id']}")[0], 200)


if __name__ == "__main__":
    unittest.main()
