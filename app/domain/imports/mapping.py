"""Which field a column holds: targets per object, and suggestions from header names in
English, Russian, Spanish, Vietnamese, Azerbaijani and Armenian."""

from __future__ import annotations

from app.domain.shared.errors import ValidationError
from app.domain.shared.normalize import fold_for_search

ADDRESS_PARTS = ("street", "city", "region", "postal_code", "country")
# Targets that several columns may share: every phone column adds a phone.
MULTI_TARGETS = {"phone", "email"}
TARGETS = {
    "contacts": {"full_name", "first_name", "middle_name", "last_name", "phone", "email",
                 "company", "status", "kind", "source", "tags", "external_id", "birthday",
                 "timezone", *(f"address.{p}" for p in ADDRESS_PARTS)},
    "companies": {"name", "domain", "phone", "email", "kind", "tags", "external_id",
                  *(f"address.{p}" for p in ADDRESS_PARTS)},
    # A deal's phone and email are its contact's: the card is found by them, or created.
    "deals": {"title", "amount", "currency", "pipeline", "stage", "owner", "contact", "phone",
              "email", "company", "expected_close_date", "lost_reason", "source", "tags",
              "external_id"},
    "tasks": {"title", "type", "description", "due_at", "reminder_at", "status", "outcome",
              "note", "assignee", "contact", "phone", "email", "company", "deal"},
    "activities": {"type", "direction", "channel", "occurred_at", "subject", "body", "owner",
                   "contact", "phone", "email", "company", "deal", "from_number", "to_number",
                   "call_status", "duration_seconds", "recording_url", "external_id"},
}

_SYNONYMS: dict[str, tuple[str, ...]] = {
    "full_name": ("full name", "name", "contact", "contact name", "client", "customer",
                  "фио", "ф и о", "имя фамилия", "клиент", "контакт", "контактное лицо",
                  "nombre completo", "cliente", "contacto", "ho ten", "ho va ten",
                  "ten khach hang", "khach hang", "ad soyad", "adi soyadi", "musteri",
                  "անուն ազգանուն", "հաճախորդ", "կոնտակտ", "անուն ազգանուն հայրանուն"),
    "first_name": ("first name", "firstname", "given name", "имя", "nombre", "ten", "ad",
                   "adi", "անուն"),
    "middle_name": ("middle name", "patronymic", "отчество", "ten dem", "ata adi",
                    "հայրանուն"),
    "last_name": ("last name", "lastname", "surname", "family name", "фамилия", "apellido",
                  "apellidos", "ho", "soyad", "soyadi", "ազգանուն"),
    "phone": ("phone", "phone number", "telephone", "tel", "mobile", "mobile phone", "cell",
              "телефон", "тел", "номер телефона", "мобильный", "мобильный телефон",
              "сотовый", "telefono", "movil", "celular", "so dien thoai", "dien thoai",
              "sdt", "di dong", "telefon", "mobil", "mobil telefon", "elaqe nomresi",
              "հեռախոս", "հեռախոսահամար", "բջջային"),
    "email": ("email", "e mail", "mail", "email address", "почта", "эл почта",
              "электронная почта", "емейл", "имейл", "correo", "correo electronico",
              "thu dien tu", "e poct", "elektron poct", "էլ փոստ", "էլփոստ", "էլ հասցե"),
    "company": ("company", "company name", "organization", "organisation", "account",
                "компания", "организация", "фирма", "empresa", "compania", "cong ty",
                "sirket", "teskilat", "ընկերություն", "կազմակերպություն"),
    "status": ("status", "статус", "estado", "trang thai", "kargavichak", "կարգավիճակ"),
    "kind": ("kind", "type", "тип", "вид", "tipo", "loai", "nov", "տեսակ"),
    "source": ("source", "lead source", "источник", "fuente", "origen", "nguon", "menbe",
               "աղբյուր"),
    "tags": ("tags", "labels", "теги", "метки", "etiquetas", "the", "teqler", "պիտակներ"),
    "external_id": ("external id", "id", "код", "внешний id", "внешний код", "ид", "codigo",
                    "ma", "ma khach hang", "kod", "կոդ", "նույնացուցիչ"),
    "birthday": ("birthday", "birth date", "date of birth", "dob", "день рождения",
                 "дата рождения", "fecha de nacimiento", "cumpleanos", "ngay sinh",
                 "dogum tarixi", "ծննդյան ամսաթիվ", "ծննդյան օր"),
    "timezone": ("timezone", "time zone", "часовой пояс", "zona horaria", "mui gio",
                 "saat qurşağı", "ժամային գոտի"),
    "address.street": ("address", "street", "адрес", "улица", "direccion", "calle", "dia chi",
                       "unvan", "kuce", "հասցե", "փողոց"),
    "address.city": ("city", "town", "город", "ciudad", "thanh pho", "seher", "քաղաք"),
    "address.region": ("region", "state", "province", "регион", "область", "provincia",
                       "tinh", "rayon", "մարզ"),
    "address.postal_code": ("postal code", "postcode", "zip", "zip code", "индекс",
                            "почтовый индекс", "codigo postal", "ma buu chinh", "poct indeksi",
                            "փոստային ինդեքս"),
    "address.country": ("country", "страна", "pais", "quoc gia", "olke", "երկիր"),
    "domain": ("domain", "website", "web site", "site", "url", "сайт", "домен", "sitio web",
               "trang web", "sayt", "կայք"),
}
_DEAL_SYNONYMS: dict[str, tuple[str, ...]] = {
    "title": ("title", "deal", "deal name", "name", "opportunity", "сделка", "название",
              "название сделки", "наименование", "trato", "nombre del trato", "oportunidad",
              "giao dich", "ten giao dich", "co hoi", "sovdelesme", "emeliyyat",
              "գործարք", "անվանում"),
    "amount": ("amount", "value", "sum", "total", "deal value", "budget", "сумма", "бюджет",
               "стоимость", "importe", "monto", "valor", "so tien", "gia tri", "mebleg",
               "deyer", "գումար", "արժեք"),
    "currency": ("currency", "валюта", "moneda", "tien te", "valyuta", "արժույթ"),
    "pipeline": ("pipeline", "funnel", "воронка", "embudo", "pipeline de ventas", "pheu",
                 "pheu ban hang", "huni", "satis hunisi", "ձագար"),
    "stage": ("stage", "deal stage", "этап", "стадия", "статус сделки", "etapa", "fase",
              "giai doan", "merhele", "փուլ"),
    "owner": ("owner", "manager", "responsible", "sales rep", "ответственный", "менеджер",
              "responsable", "vendedor", "nguoi phu trach", "mesul", "menecer",
              "պատասխանատու", "մենեջեր"),
    "contact": _SYNONYMS["full_name"],
    "expected_close_date": ("close date", "expected close date", "closing date",
                            "дата закрытия", "планируемая дата закрытия", "fecha de cierre",
                            "ngay dong", "baglanma tarixi", "փակման ամսաթիվ"),
    "lost_reason": ("lost reason", "reason", "причина отказа", "причина", "motivo",
                    "ly do", "sebeb", "պատճառ"),
}
_WORK_SYNONYMS: dict[str, tuple[str, ...]] = {
    "type": ("type", "task type", "activity type", "kind", "тип", "вид", "тип задачи",
             "tipo", "loai", "nov", "տեսակ"),
    "title": ("title", "task", "task name", "задача", "название задачи", "тема", "tarea",
              "cong viec", "nhiem vu", "tapsiriq", "առաջադրանք"),
    "description": ("description", "details", "описание", "подробности", "descripcion",
                    "mo ta", "tesvir", "նկարագրություն"),
    "due_at": ("due", "due date", "due at", "deadline", "срок", "дедлайн", "срок выполнения",
               "fecha limite", "vencimiento", "han chot", "han", "son tarix", "muddet",
               "ժամկետ"),
    "reminder_at": ("reminder", "remind at", "напоминание", "recordatorio", "nhac nho",
                    "xatirlatma", "հիշեցում"),
    "assignee": ("assignee", "assigned to", "responsible", "owner", "ответственный",
                 "исполнитель", "responsable", "asignado", "nguoi thuc hien", "icraci",
                 "կատարող", "պատասխանատու"),
    "outcome": ("outcome", "result", "результат", "итог", "resultado", "ket qua", "netice",
                "արդյունք"),
    "note": ("note", "comment", "комментарий", "заметка", "nota", "comentario", "ghi chu",
             "qeyd", "մեկնաբանություն"),
    "direction": ("direction", "направление", "direccion", "huong", "istiqamet", "ուղղություն"),
    "channel": ("channel", "канал", "canal", "kenh", "kanal", "ալիք"),
    "occurred_at": ("date", "time", "date and time", "when", "дата", "время", "дата и время",
                    "fecha", "hora", "ngay", "thoi gian", "tarix", "vaxt", "ամսաթիվ", "ժամ"),
    "subject": ("subject", "topic", "тема", "asunto", "chu de", "movzu", "թեմա"),
    "body": ("text", "body", "notes", "content", "текст", "содержание", "заметки", "texto",
             "contenido", "noi dung", "metn", "տեքստ", "բովանդակություն"),
    "owner": ("owner", "manager", "user", "менеджер", "сотрудник", "ответственный",
              "responsable", "nhan vien", "menecer", "մենեջեր"),
    "duration_seconds": ("duration", "duration seconds", "длительность", "продолжительность",
                         "duracion", "thoi luong", "muddet saniye", "տևողություն"),
    "from_number": ("from", "from number", "caller", "откуда", "звонящий", "desde"),
    "to_number": ("to", "to number", "callee", "куда", "hacia"),
    "call_status": ("call status", "статус звонка", "estado de llamada"),
    "recording_url": ("recording", "recording url", "запись", "запись разговора", "grabacion"),
    "deal": ("deal", "deal id", "сделка", "код сделки", "trato", "giao dich", "գործարք"),
    "contact": _SYNONYMS["full_name"],
}
# A company file calls its own name "name".
_COMPANY_NAME = ("name", "company", "company name", "organization", "organisation",
                 "название", "наименование", "компания", "организация", "empresa", "nombre",
                 "cong ty", "ten cong ty", "sirket", "ad", "ընկերություն", "անվանում")


def _fold(header: str) -> str:
    cleaned = "".join(ch if ch.isalnum() else " " for ch in header)
    return fold_for_search(cleaned)


def _index(object_name: str) -> dict[str, str]:
    index: dict[str, str] = {}
    synonyms = dict(_SYNONYMS)
    if object_name == "companies":
        synonyms.pop("full_name", None)
        synonyms.pop("company", None)
        synonyms["name"] = _COMPANY_NAME
    elif object_name == "deals":
        synonyms.pop("full_name", None)
        synonyms.pop("status", None)
        synonyms = {**_DEAL_SYNONYMS, **synonyms}
    elif object_name in ("tasks", "activities"):
        synonyms.pop("full_name", None)
        if object_name == "activities":
            synonyms.pop("status", None)
        synonyms = {**_WORK_SYNONYMS, **synonyms}
    for target, names in synonyms.items():
        if target not in TARGETS[object_name]:
            continue
        for name in names:
            index.setdefault(_fold(name), target)
    return index


def suggest_mapping(object_name: str, headers: list[str]) -> dict[str, str | None]:
    """Each header's likely target; unknown headers and repeats of single targets map to
    None (ignored)."""
    index = _index(object_name)
    taken: set[str] = set()
    result: dict[str, str | None] = {}
    for header in headers:
        target = index.get(_fold(header))
        if target is not None and (target in MULTI_TARGETS or target not in taken):
            taken.add(target)
            result[header] = target
        else:
            result[header] = None
    return result


def check_mapping(object_name: str, mapping: dict[str, str | None], headers: list[str],
                  custom_field_keys: set[str]) -> None:
    errors = []
    seen: set[str] = set()
    for header, target in mapping.items():
        loc: list[str | int] = ["body", "options", "mapping", header]
        if header not in headers:
            errors.append({"loc": loc, "type": "unknown_column",
                           "msg": f"the file has no column {header!r}"})
        if target is None:
            continue
        if target.startswith("custom_fields."):
            if target.split(".", 1)[1] not in custom_field_keys:
                errors.append({"loc": loc, "type": "unknown_target",
                               "msg": f"no custom field {target.split('.', 1)[1]!r}"})
        elif target not in TARGETS[object_name]:
            errors.append({"loc": loc, "type": "unknown_target",
                           "msg": f"cannot import into {target!r}; use one of "
                           + ", ".join(sorted(TARGETS[object_name])) + " or custom_fields.<key>"})
        elif target in seen and target not in MULTI_TARGETS:
            errors.append({"loc": loc, "type": "duplicate_target",
                           "msg": f"two columns map to {target!r}"})
        seen.add(target)
    if errors:
        raise ValidationError(errors[0]["msg"], errors=errors)
    needed = {"contacts": {"full_name", "first_name", "last_name", "phone", "email"},
              "companies": {"name"},
              "deals": {"title", "contact", "phone", "email", "company"},
              "tasks": {"title"}, "activities": {"type"}}[object_name]
    if not needed & seen:
        raise ValidationError.at(["body", "options", "mapping"], "map at least one of "
                                 + ", ".join(sorted(needed)) + " (columns: "
                                 + ", ".join(headers[:20]) + ")")
