"""Load a benchmark dataset into a dedicated database, fast.

    python -m bench.generate --db relata_bench --contacts 1000000 --workspaces 100 --reset

1. (Re)creates the database and applies the migrations with `relata migrate`.
2. Creates the workspaces through the application's own service (`create_workspace`: owner
   user, default API key, `workspace.created` event), one unit of work each.
3. Generates contacts in worker processes (multilingual names: Russian, Armenian, Vietnamese,
   Spanish, Azerbaijani; phones of those countries validated by libphonenumber, stored as
   E.164 with the original as typed; e-mails) and streams them with COPY, together with their
   `contact_identities` rows. Soft-deleted cards get no identities, as in the app.
4. Secondary indexes and foreign keys of the two tables are dropped before COPY and re-created
   from their exact catalog definitions afterwards (foreign keys are validated when re-added),
   then VACUUM ANALYZE.

The API keys and workspace sizes go to bench/data/<db>.json (git-ignored) for the load driver.
Not loaded: per-contact `contact.created` events (the history log), companies, custom fields.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import functools
import io
import itertools
import math
import multiprocessing as mp
import os
import random
import subprocess
import sys
import time
import unicodedata
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import phonenumbers

from bench.common import DEFAULT_DB, DEFAULT_SERVER_URL, ROOT, db_url, save_state

# --------------------------------------------------------------------------------------------
# Names. Each culture: (first names male, female), (last names male, female), extras.

RU_FIRST_M = ["Александр", "Дмитрий", "Максим", "Сергей", "Андрей", "Алексей", "Артём", "Илья",
              "Кирилл", "Михаил", "Никита", "Иван", "Егор", "Павел", "Роман", "Владимир",
              "Олег", "Николай", "Евгений", "Виктор", "Тимофей", "Григорий", "Фёдор", "Юрий"]
RU_FIRST_F = ["Анна", "Мария", "Елена", "Ольга", "Наталья", "Екатерина", "Татьяна", "Ирина",
              "Светлана", "Юлия", "Анастасия", "Дарья", "Ксения", "Алёна", "Полина", "Вера",
              "Людмила", "Галина", "Софья", "Виктория", "Жанна", "Зоя"]
RU_LAST = ["Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов",
           "Михайлов", "Новиков", "Фёдоров", "Морозов", "Волков", "Алексеев", "Лебедев",
           "Семёнов", "Егоров", "Павлов", "Козлов", "Степанов", "Николаев", "Орлов", "Андреев",
           "Макаров", "Никитин", "Захаров", "Зайцев", "Соловьёв", "Борисов", "Яковлев",
           "Григорьев", "Романов", "Воробьёв", "Сергеев", "Кузьмин", "Фролов", "Белов"]
RU_PATRONYMIC = [("Александрович", "Александровна"), ("Дмитриевич", "Дмитриевна"),
                 ("Сергеевич", "Сергеевна"), ("Андреевич", "Андреевна"),
                 ("Алексеевич", "Алексеевна"), ("Иванович", "Ивановна"),
                 ("Михайлович", "Михайловна"), ("Владимирович", "Владимировна"),
                 ("Николаевич", "Николаевна"), ("Павлович", "Павловна"),
                 ("Олегович", "Олеговна"), ("Викторович", "Викторовна"),
                 ("Юрьевич", "Юрьевна"), ("Игоревич", "Игоревна")]

AM_FIRST_M = ["Արամ", "Արմեն", "Գոռ", "Դավիթ", "Հայկ", "Տիգրան", "Նարեկ", "Վահե", "Սարգիս",
              "Գևորգ", "Արթուր", "Կարեն", "Էդգար", "Ռուբեն", "Համլետ", "Արսեն"]
AM_FIRST_F = ["Անի", "Մարիամ", "Նարե", "Լիլիթ", "Անահիտ", "Սոնա", "Գայանե", "Արփի", "Լուսինե",
              "Հասմիկ", "Տաթևիկ", "Մանե", "Էլեն", "Աստղիկ"]
AM_LAST = ["Հակոբյան", "Պետրոսյան", "Սարգսյան", "Հարությունյան", "Գրիգորյան", "Խաչատրյան",
           "Մկրտչյան", "Ավետիսյան", "Կարապետյան", "Վարդանյան", "Գասպարյան", "Ղազարյան",
           "Մարտիրոսյան", "Սահակյան", "Հովհաննիսյան", "Ստեփանյան", "Աբրահամյան", "Մանուկյան"]
# Armenians in a Russian-speaking CRM are often typed in Cyrillic.
AM_CYR_FIRST_M = ["Арам", "Армен", "Гор", "Давид", "Айк", "Тигран", "Нарек", "Ваге", "Саркис"]
AM_CYR_FIRST_F = ["Ани", "Мариам", "Наре", "Лилит", "Анаит", "Сона", "Гаяне", "Лусине"]
AM_CYR_LAST = ["Акопян", "Петросян", "Саргсян", "Арутюнян", "Григорян", "Хачатрян", "Мкртчян",
               "Аветисян", "Карапетян", "Варданян", "Гаспарян", "Казарян", "Оганесян"]

VN_LAST = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi",
           "Đỗ", "Hồ", "Ngô", "Dương", "Lý", "Đinh", "Trương", "Lâm", "Mai"]
VN_MIDDLE_M = ["Văn", "Đức", "Minh", "Hữu", "Quốc", "Thanh", "Công", "Xuân", "Tuấn", "Gia"]
VN_MIDDLE_F = ["Thị", "Ngọc", "Thu", "Thanh", "Minh", "Bích", "Kim", "Hồng", "Phương", "Diệu"]
VN_FIRST_M = ["An", "Bảo", "Dũng", "Hải", "Hiếu", "Hùng", "Huy", "Khánh", "Long", "Nam",
              "Phúc", "Quân", "Quang", "Thắng", "Tuấn", "Tú", "Việt", "Đạt", "Sơn", "Trung"]
VN_FIRST_F = ["Anh", "Châu", "Giang", "Hà", "Hạnh", "Hoa", "Lan", "Linh", "Mai", "Ngọc",
              "Phương", "Thảo", "Trang", "Yến", "Nhung", "Hương", "Vy", "Uyên"]

ES_FIRST_M = ["José", "Antonio", "Manuel", "Javier", "Alejandro", "Sergio", "Pablo", "Daniel",
              "Álvaro", "Jesús", "Francisco", "David", "Adrián", "Raúl", "Iñaki", "Joaquín"]
ES_FIRST_F = ["María", "Carmen", "Lucía", "Sofía", "Paula", "Marta", "Laura", "Elena",
              "Nuria", "Inés", "Ana Belén", "María José", "Begoña", "Pilar", "Ángela", "Rocío"]
ES_LAST = ["García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez",
           "Pérez", "Gómez", "Martín", "Jiménez", "Ruiz", "Hernández", "Díaz", "Moreno",
           "Muñoz", "Álvarez", "Romero", "Navarro", "Torres", "Domínguez", "Gil", "Vázquez",
           "Serrano", "Ramos", "Castillo", "Ortega", "Rubio", "Núñez", "Ibáñez", "Peña"]

AZ_FIRST_M = ["Əli", "Elvin", "Rəşad", "Tural", "Orxan", "Fərid", "Kamran", "Murad", "Elşən",
              "Nicat", "Vüqar", "Ceyhun", "Səməd", "Rüstəm", "İlqar", "Anar"]
AZ_FIRST_F = ["Aysel", "Günay", "Leyla", "Nərgiz", "Səbinə", "Aynur", "Lalə", "Xədicə",
              "Ülviyyə", "Şəbnəm", "Gülnar", "Aytən", "Könül", "Fidan"]
AZ_LAST = ["Məmmədov", "Əliyev", "Həsənov", "Hüseynov", "Quliyev", "İsmayılov", "Abbasov",
           "Rzayev", "Cəfərov", "Orucov", "Bağırov", "Süleymanov", "Nəsirov", "Şükürov",
           "Qasımov", "Vəliyev"]

_TRANSLIT = {
    # Cyrillic
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z",
    "и": "i", "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r",
    "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh",
    "щ": "shch", "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu", "я": "ya",
    # Armenian
    "ա": "a", "բ": "b", "գ": "g", "դ": "d", "ե": "e", "զ": "z", "է": "e", "ը": "y", "թ": "t",
    "ժ": "zh", "ի": "i", "լ": "l", "խ": "kh", "ծ": "ts", "կ": "k", "հ": "h", "ձ": "dz",
    "ղ": "gh", "ճ": "ch", "մ": "m", "յ": "y", "ն": "n", "շ": "sh", "ո": "o", "չ": "ch",
    "պ": "p", "ջ": "j", "ռ": "r", "ս": "s", "վ": "v", "տ": "t", "ր": "r", "ց": "ts", "ւ": "v",
    "փ": "p", "ք": "k", "օ": "o", "ֆ": "f", "և": "ev",
    # Azerbaijani letters that do not decompose
    "ə": "e", "ı": "i", "đ": "d",
}


@functools.cache
def latin(value: str) -> str:
    """An ASCII e-mail-ish spelling of a name in any of the scripts above."""
    out = []
    for ch in value.lower():
        ch = _TRANSLIT.get(ch, ch)
        for c in unicodedata.normalize("NFKD", ch):
            if c.isascii() and c.isalnum():
                out.append(c)
    return "".join(out)


def _russian(rng: random.Random) -> tuple[str, str | None, str]:
    female = rng.random() < 0.5
    first = rng.choice(RU_FIRST_F if female else RU_FIRST_M)
    last = rng.choice(RU_LAST) + ("а" if female else "")
    middle = rng.choice(RU_PATRONYMIC)[1 if female else 0] if rng.random() < 0.6 else None
    return first, middle, last


def _armenian(rng: random.Random) -> tuple[str, str | None, str]:
    female = rng.random() < 0.5
    if rng.random() < 0.35:  # typed in Cyrillic
        return (rng.choice(AM_CYR_FIRST_F if female else AM_CYR_FIRST_M), None,
                rng.choice(AM_CYR_LAST))
    return rng.choice(AM_FIRST_F if female else AM_FIRST_M), None, rng.choice(AM_LAST)


def _vietnamese(rng: random.Random) -> tuple[str, str | None, str]:
    female = rng.random() < 0.5
    return (rng.choice(VN_FIRST_F if female else VN_FIRST_M),
            rng.choice(VN_MIDDLE_F if female else VN_MIDDLE_M), rng.choice(VN_LAST))


def _spanish(rng: random.Random) -> tuple[str, str | None, str]:
    female = rng.random() < 0.5
    first = rng.choice(ES_FIRST_F if female else ES_FIRST_M)
    a, b = rng.sample(ES_LAST, 2)
    return first, None, f"{a} {b}" if rng.random() < 0.8 else a


def _azerbaijani(rng: random.Random) -> tuple[str, str | None, str]:
    female = rng.random() < 0.5
    last = rng.choice(AZ_LAST) + ("a" if female else "")
    return rng.choice(AZ_FIRST_F if female else AZ_FIRST_M), None, last


CULTURES = {"RU": _russian, "AM": _armenian, "VN": _vietnamese, "ES": _spanish,
            "AZ": _azerbaijani}
REGIONS = ["RU", "AM", "VN", "ES", "AZ"]
REGION_TZ = {"RU": "Europe/Moscow", "AM": "Asia/Yerevan", "VN": "Asia/Ho_Chi_Minh",
             "ES": "Europe/Madrid", "AZ": "Asia/Baku"}
EMAIL_DOMAINS = {
    "RU": ["mail.ru", "yandex.ru", "gmail.com", "bk.ru", "inbox.ru", "rambler.ru"],
    "AM": ["gmail.com", "mail.ru", "yandex.ru", "yahoo.com"],
    "VN": ["gmail.com", "yahoo.com.vn", "outlook.com", "hotmail.com"],
    "ES": ["gmail.com", "hotmail.es", "yahoo.es", "telefonica.net", "outlook.es"],
    "AZ": ["gmail.com", "mail.ru", "box.az", "yahoo.com"],
}
CITIES = {"RU": ["Москва", "Санкт-Петербург", "Казань", "Екатеринбург", "Новосибирск"],
          "AM": ["Երևան", "Գյումրի", "Վանաձոր"], "VN": ["Hà Nội", "TP. Hồ Chí Minh", "Đà Nẵng"],
          "ES": ["Madrid", "Barcelona", "Valencia", "Sevilla", "Málaga"],
          "AZ": ["Bakı", "Gəncə", "Sumqayıt"]}
COUNTRY = {"RU": "Россия", "AM": "Հայաստան", "VN": "Việt Nam", "ES": "España", "AZ": "Azərbaycan"}

# --------------------------------------------------------------------------------------------
# Phones: (country code, national prefixes, subscriber digits, weight). Every number is checked
# with libphonenumber; subscriber numbers come from a bijection of a per-workspace counter, so
# numbers are unique within a workspace without keeping a set.

PHONE_PLANS: dict[str, list[tuple[str, list[str], int, float]]] = {
    "RU": [("7", [str(p) for p in range(900, 1000)], 7, 0.85),
           ("7", ["495", "499", "812", "343", "383", "843", "861"], 7, 0.15)],
    "AM": [("374", ["91", "93", "94", "95", "96", "98", "99", "77", "55", "33", "41", "43",
                    "44", "49"], 6, 0.85), ("374", ["10"], 6, 0.15)],
    "VN": [("84", ["90", "91", "93", "94", "96", "97", "98", "32", "33", "34", "35", "36", "37",
                   "38", "39", "70", "76", "77", "78", "79", "81", "82", "83", "84", "85", "86",
                   "88", "89", "56", "58"], 7, 0.85), ("84", ["24", "28"], 8, 0.15)],
    "ES": [("34", [str(p) for p in range(600, 700)] + ["711", "722", "733", "744"], 6, 0.85),
           ("34", ["91", "93", "95", "96"], 7, 0.15)],
    "AZ": [("994", ["50", "51", "55", "70", "77", "99", "10"], 7, 0.85), ("994", ["12"], 7, 0.15)],
}


def _spaced(digits: str, groups: list[int]) -> list[str]:
    out, i = [], 0
    for g in groups:
        out.append(digits[i:i + g])
        i += g
    if i < len(digits):
        out.append(digits[i:])
    return out


def typed_phone(rng: random.Random, cc: str, national: str, home_region: str,
                number_region: str) -> str:
    """The number as a person would type it into a CRM of `home_region`."""
    if number_region != home_region or rng.random() < 0.2:
        style = rng.random()
        if style < 0.5:
            return f"+{cc}{national}"
        if number_region == "RU":
            a, b, c, d = _spaced(national, [3, 3, 2, 2])
            return f"+7 {a} {b}-{c}-{d}"
        return f"+{cc} " + " ".join(_spaced(national, [2, 3, 2, 2]))
    if number_region == "RU":
        a, b, c, d = _spaced(national, [3, 3, 2, 2])
        return rng.choice([f"8 ({a}) {b}-{c}-{d}", f"8{national}", f"8-{a}-{b}-{c}-{d}",
                           f"+7 ({a}) {b}-{c}-{d}", f"7{national}"])
    if number_region == "ES":
        return rng.choice([" ".join(_spaced(national, [3, 2, 2, 2])), national,
                           " ".join(_spaced(national, [3, 3, 3]))])
    if number_region == "VN":
        return rng.choice(["0" + national, "0" + " ".join(_spaced(national, [3, 3, 3])),
                           "0" + ".".join(_spaced(national, [3, 3, 3]))])
    # AM, AZ: trunk 0
    if number_region == "AM":
        return rng.choice(["0" + national, "0" + " ".join(_spaced(national, [2, 2, 2, 2])),
                           f"(0{national[:2]}) {national[2:]}"])
    return rng.choice(["0" + national, "0" + " ".join(_spaced(national, [2, 3, 2, 2])),
                       f"(0{national[:2]}) {national[2:]}"])


def _mix(k: int, salt: int, modulus: int) -> int:
    """A bijection of 0..modulus-1 (modulus a power of ten): multiply by a unit, then add."""
    return (k * 7_654_321 + salt) % modulus  # 7654321 is coprime with 10


# --------------------------------------------------------------------------------------------
# Worker processes: one chunk = one time window across every workspace.

CONTACT_COLUMNS = ["workspace_id", "id", "version", "created_at", "updated_at", "deleted_at",
                   "created_by", "updated_by", "first_name", "last_name", "middle_name",
                   "full_name", "phones", "emails", "address", "timezone", "status", "kind",
                   "owner_id", "company_id", "source", "utm", "birthday", "tags",
                   "custom_fields", "external_id", "search_text", "merged_into_id"]
IDENTITY_COLUMNS = ["workspace_id", "kind", "value", "contact_id"]
STATUSES = (["new", "cold", "warm", "hot", "vip", "regular", "archived"],
            None, list(itertools.accumulate([30, 15, 20, 10, 5, 15, 5])))
KINDS = (["customer", "supplier", "partner"], None, [90, 95, 100])
SOURCES = ["website", "instagram", "whatsapp", "telegram", "referral", "cold_call", "exhibition",
           "avito", "facebook", None]
TAGS = ["vip", "wholesale", "retail", "b2b", "newsletter", "lead", "returning", "instagram",
        "whatsapp", "telegram", "event-2025", "discount", "debtor", "installer"]
LABELS = ["mobile", "mobile", "work", "home", None, None]

_G: dict[str, Any] = {}


def _init_worker(workspaces: list[dict[str, Any]], chunks: int, seed: int, start: float,
                 span: float) -> None:
    _G.update(workspaces=workspaces, chunks=chunks, seed=seed, start=start, span=span,
              now=datetime.fromtimestamp(start + span, UTC))
    _G["tz_cache"] = {}


def _timezone(e164: str, preferred: str) -> str | None:
    """The app's `timezone_for_phone`, cached per prefix (zones follow the country code and
    the first national digits). Newer app versions take the workspace's zone as `preferred`."""
    import inspect

    from app.domain.shared.normalize import timezone_for_phone

    cache = _G["tz_cache"]
    key = (e164[:6], preferred)
    if key not in cache:
        takes_preferred = len(inspect.signature(timezone_for_phone).parameters) > 1
        cache[key] = (timezone_for_phone(e164, preferred) if takes_preferred  # type: ignore[call-arg]
                      else timezone_for_phone(e164))
    return cache[key]


@functools.cache
def _valid_block(head: str) -> bool:
    """libphonenumber validity of numbers starting with `head` (checked on a few of them:
    validity follows the leading digits, so a block of 100,000 numbers shares it)."""
    return all(phonenumbers.is_valid_number(phonenumbers.parse(f"{head}{tail}", None))
               for tail in ("00000", "49999", "99999"))


def _phone(rng: random.Random, ws: dict[str, Any], counter: int, index: int
           ) -> tuple[str, str] | None:
    """(e164, typed) for the `counter`-th number of this workspace, or None if invalid."""
    home = ws["region"]
    number_region = home if rng.random() < 0.9 else rng.choice(REGIONS)
    plans = PHONE_PLANS[number_region]
    plan = plans[0] if rng.random() < plans[0][3] else plans[1]
    cc, prefixes, sub_digits, _ = plan
    prefix = prefixes[rng.randrange(len(prefixes))]
    modulus = 10 ** sub_digits
    # Unique per (workspace, prefix): counters differ, the mix is a bijection; numbers drawn
    # from another country's plan live in that country's code, so they cannot collide with
    # home numbers either. (counter < modulus for every workspace size used here.)
    subscriber = str(_mix(counter, ws["salt"], modulus)).zfill(sub_digits)
    national = prefix + subscriber
    e164 = f"+{cc}{national}"
    if not _valid_block(e164[:-5]) or not phonenumbers.is_valid_number(
            phonenumbers.parse(e164, None)):
        return None
    return e164, typed_phone(rng, cc, national, home, number_region)


def gen_chunk(chunk: int) -> tuple[bytes, bytes, int, int, list[tuple[str, str, str]]]:
    from uuid_utils.compat import uuid7

    from app.domain.shared.cardfields import search_blob
    from app.domain.shared.normalize import normalize_name

    workspaces, chunks = _G["workspaces"], _G["chunks"]
    rng = random.Random(_G["seed"] * 1_000_003 + chunk)
    window = _G["span"] / chunks
    t0 = _G["start"] + chunk * window
    rows: list[tuple[float, list[Any], list[tuple[str, str]]]] = []
    samples: list[tuple[str, str, str]] = []
    for ws in workspaces:
        n = ws["contacts"]
        lo, hi = n * chunk // chunks, n * (chunk + 1) // chunks
        region, ws_id = ws["region"], ws["id"]
        for k in range(lo, hi):
            created = t0 + rng.random() * window
            culture = region if rng.random() < 0.8 else rng.choice(REGIONS)
            first, middle, last = CULTURES[culture](rng)
            if culture == "VN":
                full = f"{last} {middle} {first}"
            else:
                full = " ".join(p for p in (first, middle, last) if p)
            phones = []
            nphones = 0 if rng.random() < 0.05 else (2 if rng.random() < 0.25 else 1)
            for i in range(nphones):
                # Counters k and n + k: distinct for every number of this workspace.
                got = _phone(rng, ws, k + i * n, i)
                if got and all(p["e164"] != got[0] for p in phones):
                    phones.append({"e164": got[0], "original": got[1],
                                   "label": rng.choice(LABELS)})
            emails = []
            if rng.random() < 0.6:
                lf, ll = latin(first), latin(last)
                local = rng.choice([f"{lf}.{ll}", f"{lf}{ll}", f"{lf[:1]}{ll}", f"{ll}.{lf}"])
                emails.append({"email": f"{local}.{k:x}@{rng.choice(EMAIL_DOMAINS[culture])}",
                               "label": None})
                if rng.random() < 0.1:
                    emails.append({"email": f"{ll}{k:x}@corp-{ws['n']}.example",
                                   "label": "work"})
            created_dt = datetime.fromtimestamp(created, UTC)
            versions = 1 if rng.random() < 0.8 else rng.randint(2, 6)
            updated_dt = created_dt if versions == 1 else min(
                created_dt + timedelta(days=rng.random() * 200), _G["now"])
            deleted = rng.random() < 0.01
            owner = ws["owner_id"] if rng.random() < 0.4 else None
            actor = f"user:{owner}" if owner else f"api_key:{ws['api_key_id']}"
            external_id = f"1c-{ws['n']:03d}-{k:07d}" if rng.random() < 0.3 else None
            tags = rng.sample(TAGS, rng.choice([0, 0, 0, 1, 1, 2, 3]))
            tz = _timezone(phones[0]["e164"], ws["timezone"]) if phones else None
            address = ({"city": rng.choice(CITIES[culture]), "country": COUNTRY[culture]}
                       if rng.random() < 0.3 else None)
            birthday = (date(rng.randint(1950, 2005), rng.randint(1, 12), rng.randint(1, 28))
                        if rng.random() < 0.2 else None)
            source = rng.choice(SOURCES)
            utm = ({"utm_source": rng.choice(["google", "yandex", "facebook"]),
                    "utm_campaign": rng.choice(["spring", "black-friday", "brand"])}
                   if rng.random() < 0.05 else None)
            cid = uuid.UUID(str(uuid7(nanoseconds=int(created * 1e9))))
            first, middle = normalize_name(first), normalize_name(middle)
            last, full = normalize_name(last), normalize_name(full) or ""
            status = rng.choices(STATUSES[0], cum_weights=STATUSES[2])[0]
            kind = rng.choices(KINDS[0], cum_weights=KINDS[2])[0]
            row = [ws_id, str(cid), versions, created_dt.isoformat(), updated_dt.isoformat(),
                   updated_dt.isoformat() if deleted else None, actor, actor, first, last, middle,
                   full, orjson.dumps(phones).decode(), orjson.dumps(emails).decode(),
                   orjson.dumps(address).decode() if address else None, tz,
                   status, kind, owner, None, source,
                   orjson.dumps(utm).decode() if utm else None,
                   birthday.isoformat() if birthday else None,
                   "{" + ",".join(tags) + "}", "{}", external_id,
                   search_blob(full, external_id, phones=phones, emails=emails), None]
            idents = [] if deleted else (
                [("phone", p["e164"]) for p in phones] + [("email", e["email"]) for e in emails])
            rows.append((created, row, idents))
            if phones and not deleted and rng.random() < 0.01:
                samples.append((ws_id, phones[0]["original"], phones[0]["e164"]))
    rows.sort(key=lambda r: r[0])
    cbuf, ibuf = io.StringIO(), io.StringIO()
    cw, iw = csv.writer(cbuf), csv.writer(ibuf)
    nid = 0
    for _, row, idents in rows:
        cw.writerow(row)
        for kind, value in idents:
            iw.writerow((row[0], kind, value, row[1]))
            nid += 1
    return cbuf.getvalue().encode(), ibuf.getvalue().encode(), len(rows), nid, samples


# --------------------------------------------------------------------------------------------
# Main process.

def workspace_sizes(total: int, count: int, skew: float) -> list[int]:
    """Zipf-like sizes (a few big tenants, a long tail) that add up to `total`."""
    weights = [1 / (i + 1) ** skew for i in range(count)]
    s = sum(weights)
    sizes = [int(total * w / s) for w in weights]
    for i in range(total - sum(sizes)):
        sizes[i % count] += 1
    return sizes


async def prepare_database(server: str, db: str, reset: bool) -> None:
    conn = await asyncpg.connect(db_url(server, "postgres"))
    try:
        exists = await conn.fetchval("select 1 from pg_database where datname = $1", db)
        if exists and reset:
            await conn.execute(f'DROP DATABASE "{db}" WITH (FORCE)')
            exists = False
        if not exists:
            await conn.execute(f'CREATE DATABASE "{db}"')
    finally:
        await conn.close()
    env = {**os.environ, "RELATA_DATABASE_URL": db_url(server, db)}
    subprocess.run([sys.executable, "-m", "app.cli", "migrate"], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)


async def create_workspaces(server: str, db: str, count: int, sizes: list[int]
                            ) -> list[dict[str, Any]]:
    """Through the application's service, like `relata workspace create` does."""
    from app.config import Settings
    from app.db import create_engine, session_factory, unit_of_work
    from app.domain.workspaces import secrets
    from app.domain.workspaces.schemas import WorkspaceCreate
    from app.domain.workspaces.service import create_workspace

    engine = create_engine(Settings(database_url=db_url(server, db)))
    sessions = session_factory(engine)
    out = []
    try:
        for i in range(count):
            region = REGIONS[i % len(REGIONS)]
            data = WorkspaceCreate(name=f"Bench {region} {i:03d}",
                                   owner_email=f"owner{i:03d}@bench.example",
                                   default_region=region, timezone=REGION_TZ[region])
            async with unit_of_work(sessions, None) as session:
                workspace, owner, key = await create_workspace(session, data)
            out.append({"n": i, "id": str(workspace.id), "name": workspace.name, "region": region,
                        "owner_id": str(owner.id), "api_key": key,
                        "api_key_id": str(secrets.parse_token_id(key, secrets.API_KEY_PREFIX)),
                        "contacts": sizes[i], "salt": (i * 104_729) % 1_000_000,
                        "timezone": REGION_TZ[region]})
    finally:
        await engine.dispose()
    return out


TABLES = ("contacts", "contact_identities")


async def drop_secondary(conn: asyncpg.Connection) -> tuple[list[str], list[tuple[str, str, str]]]:
    indexes = await conn.fetch("""
        select i.indexname, i.indexdef from pg_indexes i
        join pg_class c on c.relname = i.indexname
        where i.schemaname = 'public' and i.tablename = any($1::text[])
          and not exists (select 1 from pg_constraint k where k.conindid = c.oid)""",
                               list(TABLES))
    fks = await conn.fetch("""
        select conrelid::regclass::text as tbl, conname, pg_get_constraintdef(oid) as def
        from pg_constraint where contype = 'f' and conrelid::regclass::text = any($1::text[])
        order by conrelid::regclass::text desc""", list(TABLES))
    fk_defs = [(r["tbl"], r["conname"], r["def"]) for r in fks]
    for tbl, name, _ in fk_defs:
        await conn.execute(f'ALTER TABLE "{tbl}" DROP CONSTRAINT "{name}"')
    for r in indexes:
        await conn.execute(f'DROP INDEX "{r["indexname"]}"')
    return [r["indexdef"] for r in indexes], fk_defs


async def restore_secondary(conn: asyncpg.Connection, index_defs: list[str],
                            fk_defs: list[tuple[str, str, str]]) -> None:
    await conn.execute("SET maintenance_work_mem = '1GB'")
    await conn.execute("SET max_parallel_maintenance_workers = 2")
    for sql in index_defs:
        t = time.perf_counter()
        await conn.execute(sql)
        print(f"  {sql.split(' ON ')[0]}  {time.perf_counter() - t:.1f}s", flush=True)
    for tbl, name, definition in reversed(fk_defs):
        t = time.perf_counter()
        await conn.execute(f'ALTER TABLE "{tbl}" ADD CONSTRAINT "{name}" {definition}')
        print(f"  FK {tbl}.{name}  {time.perf_counter() - t:.1f}s", flush=True)


async def main_async(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    sizes = workspace_sizes(args.contacts, args.workspaces, args.skew)
    if max(sizes) * 2 >= 10 ** 6:
        raise SystemExit("a workspace that large would exhaust a 6-digit phone plan; "
                         "use more workspaces or less skew")
    await prepare_database(args.server, args.db, args.reset)
    conn = await asyncpg.connect(db_url(args.server, args.db))
    if await conn.fetchval("select count(*) from contacts") or \
            await conn.fetchval("select count(*) from workspaces"):
        raise SystemExit(f"database {args.db} already has data; pass --reset")
    t = time.perf_counter()
    workspaces = await create_workspaces(args.server, args.db, args.workspaces, sizes)
    print(f"{len(workspaces)} workspaces via the service in {time.perf_counter() - t:.1f}s",
          flush=True)
    index_defs, fk_defs = await drop_secondary(conn)
    chunks = max(1, math.ceil(args.contacts / args.chunk_size))
    now = time.time()
    span = args.years * 365.25 * 86400
    init = (workspaces, chunks, args.seed, now - span, span)
    t = time.perf_counter()
    n_contacts = n_idents = 0
    samples: list[tuple[str, str, str]] = []
    ctx = mp.get_context("fork")
    with ctx.Pool(args.jobs, initializer=_init_worker, initargs=init) as pool:
        for cbytes, ibytes, nc, ni, smp in pool.imap(gen_chunk, range(chunks)):
            await conn.copy_to_table("contacts", source=io.BytesIO(cbytes),
                                     columns=CONTACT_COLUMNS, format="csv")
            await conn.copy_to_table("contact_identities", source=io.BytesIO(ibytes),
                                     columns=IDENTITY_COLUMNS, format="csv")
            n_contacts += nc
            n_idents += ni
            samples.extend(smp)
            el = time.perf_counter() - t
            print(f"\r  {n_contacts:>9,} contacts {n_idents:>9,} identities  "
                  f"{el:6.1f}s  {n_contacts / el:,.0f}/s", end="", flush=True)
    print(f"\nCOPY done in {time.perf_counter() - t:.1f}s", flush=True)
    t = time.perf_counter()
    await restore_secondary(conn, index_defs, fk_defs)
    print(f"indexes and foreign keys in {time.perf_counter() - t:.1f}s", flush=True)
    t = time.perf_counter()
    for table in (*TABLES, "workspaces", "users", "api_keys"):
        await conn.execute(f'VACUUM (ANALYZE) "{table}"')
    print(f"vacuum analyze in {time.perf_counter() - t:.1f}s", flush=True)
    await _self_check(conn, samples, workspaces)
    size = await conn.fetchval("select pg_size_pretty(pg_database_size(current_database()))")
    await conn.close()
    total = time.perf_counter() - started
    save_state(args.db, {"db": args.db, "contacts": n_contacts, "identities": n_idents,
                         "workspaces": workspaces, "generated_at": datetime.now(UTC).isoformat(),
                         "seconds": round(total, 1), "database_size": size})
    print(f"done: {n_contacts:,} contacts, {n_idents:,} identities, {size}, "
          f"{total:.0f}s total; state in bench/data/{args.db}.json")


async def _self_check(conn: asyncpg.Connection, samples: list[tuple[str, str, str]],
                      workspaces: list[dict[str, Any]]) -> None:
    """Typed phones normalize (with the app's own code) to the stored E.164, and resolve."""
    from app.domain.shared.normalize import try_normalize_phone

    region = {w["id"]: w["region"] for w in workspaces}
    bad = 0
    for ws, typed, e164 in samples[:5000]:
        if try_normalize_phone(typed, region[ws]) != e164:
            bad += 1
            if bad < 5:
                print(f"  phone mismatch: {typed!r} in {region[ws]} -> expected {e164}")
    found = await conn.fetchval(
        "select count(*) from contact_identities i join unnest($1::uuid[], $2::text[]) "
        "s(ws, v) on i.workspace_id = s.ws and i.kind = 'phone' and i.value = s.v",
        [s[0] for s in samples[:5000]], [s[2] for s in samples[:5000]])
    print(f"self-check: {len(samples[:5000]) - bad}/{len(samples[:5000])} typed phones "
          f"normalize to their E.164; {found} found in contact_identities")
    if bad:
        raise SystemExit("phone self-check failed")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", default=DEFAULT_SERVER_URL,
                   help="PostgreSQL server URL without a database (superuser; env BENCH_PG_URL)")
    p.add_argument("--db", default=DEFAULT_DB, help="database to (re)create (env BENCH_DB)")
    p.add_argument("--contacts", type=int, default=1_000_000)
    p.add_argument("--workspaces", type=int, default=100)
    p.add_argument("--skew", type=float, default=0.7, help="Zipf exponent of workspace sizes")
    p.add_argument("--years", type=float, default=3.0, help="created_at spread")
    p.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2)),
                   help="generator processes")
    p.add_argument("--chunk-size", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--reset", action="store_true", help="drop and recreate the database")
    args = p.parse_args()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
