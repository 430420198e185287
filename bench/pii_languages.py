"""Held-out corpora in Czech, Polish, German, French, Spanish and Chinese for `bench.pii_text`.

Vocabularies written for this benchmark only (none is a list the classifier reads): ordinary signage and
news words vs person names (with each language's titles), phone numbers, ID numbers, addresses and plates.
Every vocabulary is split in two halves as `bench.pii_text` does (even / odd positions): the policy's
language thresholds (`tasks.anonymize.pii.OTHER_*`, `ZH_*`) were chosen looking at half A; half B is held
out. Phone numbers come from `phonenumbers` (Google's libphonenumber metadata): each EU country's and
China's example mobile and fixed-line numbers with fresh random digits, printed in the national,
international and E.164 formats, with "00" for "+", dots, dashes or slashes for spaces, and a
"Tel."/"Tél."/"tel."/"Tel:"/"電話"/"电话" prefix or none; the "three groups of three" format of Spain,
Czechia and Poland ("Tel. 601 234 567") is drawn on its own too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

EU_AND_CN = ("AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV",
             "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "CN")  # fmt: skip
PREFIXES = ("", "", "Tel. ", "Tél. ", "tel. ", "Tel: ", "TEL. ", "電話 ", "电话：", "Tel./Fax ", "Mobil: ", "Tel ")
LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"

# Per language: ordinary lines (signage, then news words), first names, surnames, titles, street words, towns.
VOCAB: dict[str, dict[str, tuple[str, ...]]] = {
    "cs": {
        "ordinary": ("Zákaz vjezdu", "Nouzový východ", "Otevřeno", "Zavřeno", "Pozor schod", "Vstup zakázán",
                     "Zákaz kouření", "Lékárna", "Pekárna", "Potraviny", "Pošta", "Nádraží", "Parkoviště",
                     "Výprodej", "Pouze pro zaměstnance", "Otevřeno 9.00-17.00", "Vchod", "Východ", "Pokladna",
                     "Informace", "Vláda schválila nový zákon", "Ceny energií dál rostou", "Praha hlásí rekordní teploty",
                     "Sport", "Počasí", "Zprávy z regionu", "Kultura", "Ekonomika", "Volby do Senátu",
                     "Dnes večer", "Restaurace", "Kavárna", "Knihkupectví", "Nemocnice", "Městský úřad",
                     "Čerstvé pečivo", "Hotel", "Trafika", "Policie", "Dětské hřiště"),
        "first": ("Jan", "Petra", "Tomáš", "Lucie", "Jiří", "Kateřina", "Martin", "Eva", "Pavel", "Veronika",
                  "Zdeněk", "Hana", "Lukáš", "Tereza", "Ondřej", "Markéta"),
        "last": ("Novák", "Svobodová", "Dvořák", "Černá", "Procházka", "Kučerová", "Veselý", "Horáková",
                 "Němec", "Marková", "Pokorný", "Králová", "Jelínek", "Růžičková", "Beneš", "Fialová"),
        "titles": ("Ing.", "Mgr.", "MUDr.", "pan", "paní", "Bc."),
        "streets": ("ulice", "nám.", "třída", "náměstí"),
        "towns": ("Praha", "Brno", "Ostrava", "Plzeň", "Olomouc", "Liberec"),
    },
    "pl": {
        "ordinary": ("Zakaz wjazdu", "Wyjście", "Otwarte", "Zamknięte", "Uwaga", "Zakaz palenia", "Apteka",
                     "Piekarnia", "Sklep spożywczy", "Poczta", "Dworzec", "Parking", "Wyprzedaż", "Tylko dla personelu",
                     "Wejście", "Kasa", "Informacja", "Toaleta", "Rząd przyjął nową ustawę", "Ceny paliw znowu rosną",
                     "Sport", "Pogoda", "Wiadomości", "Kultura", "Gospodarka", "Wybory parlamentarne", "Dziś wieczorem",
                     "Restauracja", "Kawiarnia", "Księgarnia", "Szpital", "Urząd miasta", "Świeże pieczywo", "Hotel",
                     "Policja", "Plac zabaw", "Przystanek autobusowy", "Czynne od poniedziałku do piątku"),
        "first": ("Anna", "Piotr", "Katarzyna", "Krzysztof", "Małgorzata", "Andrzej", "Agnieszka", "Tomasz",
                  "Joanna", "Paweł", "Magdalena", "Marcin", "Ewa", "Michał", "Barbara", "Łukasz"),
        "last": ("Kowalski", "Nowak", "Wiśniewska", "Wójcik", "Kowalczyk", "Kamińska", "Lewandowski", "Zielińska",
                 "Szymański", "Woźniak", "Dąbrowski", "Kozłowska", "Jankowski", "Mazur", "Kwiatkowska", "Krawczyk"),
        "titles": ("Pan", "Pani", "dr", "mgr", "prof."),
        "streets": ("ul.", "al.", "pl.", "ulica"),
        "towns": ("Warszawa", "Kraków", "Łódź", "Wrocław", "Poznań", "Gdańsk"),
    },
    "de": {
        "ordinary": ("Einfahrt freihalten", "Notausgang", "Geöffnet", "Geschlossen", "Vorsicht Stufe", "Rauchen verboten",
                     "Apotheke", "Bäckerei", "Lebensmittel", "Post", "Bahnhof", "Parkplatz", "Ausverkauf",
                     "Nur für Personal", "Eingang", "Ausgang", "Kasse", "Information", "Regierung beschließt neues Gesetz",
                     "Preise steigen weiter", "Sport", "Wetter", "Nachrichten", "Kultur", "Wirtschaft", "Wahlen im Herbst",
                     "Heute Abend", "Gaststätte", "Kaffee und Kuchen", "Buchhandlung", "Krankenhaus", "Rathaus",
                     "Frische Brötchen", "Hotel", "Polizei", "Spielplatz", "Bitte klingeln", "Betreten verboten"),
        "first": ("Lukas", "Anna", "Stefan", "Julia", "Thomas", "Sabine", "Michael", "Katrin", "Andreas", "Claudia",
                  "Jürgen", "Ursula", "Matthias", "Petra", "Florian", "Monika"),
        "last": ("Müller", "Schmidt", "Schneider", "Fischer", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann",
                 "Koch", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Zimmermann"),
        "titles": ("Herr", "Frau", "Dr.", "Prof."),
        "streets": ("Straße", "Weg", "Platz", "Allee"),
        "towns": ("Berlin", "München", "Hamburg", "Köln", "Leipzig", "Dresden"),
    },
    "fr": {
        "ordinary": ("Sortie de secours", "Ouvert", "Fermé", "Attention marche", "Défense de fumer", "Pharmacie",
                     "Boulangerie", "Épicerie", "La Poste", "Gare", "Parking", "Soldes", "Réservé au personnel",
                     "Entrée", "Sortie", "Caisse", "Accueil", "Toilettes", "Le gouvernement adopte une nouvelle loi",
                     "Les prix continuent de grimper", "Sport", "Météo", "Actualités", "Culture", "Économie",
                     "Élections municipales", "Ce soir", "Restaurant", "Café", "Librairie", "Hôpital", "Mairie",
                     "Pain frais", "Hôtel", "Police", "Aire de jeux", "Stationnement interdit", "Propriété privée"),
        "first": ("Jean", "Marie", "Nicolas", "Camille", "Julien", "Nathalie", "Sébastien", "Isabelle", "François",
                  "Sophie", "Mathieu", "Céline", "Olivier", "Aurélie", "Guillaume", "Élodie"),
        "last": ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
                 "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "Fontaine"),
        "titles": ("M.", "Mme", "Mlle", "Dr", "Me"),
        "streets": ("rue", "avenue", "boulevard", "place"),
        "towns": ("Paris", "Lyon", "Marseille", "Toulouse", "Lille", "Nantes"),
    },
    "es": {
        "ordinary": ("Salida de emergencia", "Abierto", "Cerrado", "Cuidado con el escalón", "Prohibido fumar",
                     "Farmacia", "Panadería", "Supermercado", "Correos", "Estación", "Aparcamiento", "Rebajas",
                     "Solo personal autorizado", "Entrada", "Salida", "Caja", "Información", "Aseos",
                     "El gobierno aprueba una nueva ley", "Los precios siguen subiendo", "Deportes", "El tiempo",
                     "Noticias", "Cultura", "Economía", "Elecciones generales", "Esta noche", "Restaurante", "Cafetería",
                     "Librería", "Hospital", "Ayuntamiento", "Pan recién hecho", "Hotel", "Policía", "Parque infantil",
                     "Prohibido aparcar", "Propiedad privada"),
        "first": ("José", "María", "Antonio", "Carmen", "Manuel", "Lucía", "Javier", "Isabel", "Francisco", "Pilar",
                  "Alejandro", "Cristina", "Sergio", "Laura", "Pablo", "Marta"),
        "last": ("García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez", "Pérez", "Gómez",
                 "Jiménez", "Ruiz", "Hernández", "Díaz", "Moreno", "Álvarez", "Romero"),
        "titles": ("Sr.", "Sra.", "Dr.", "Dña.", "D."),
        "streets": ("Calle", "Avenida", "Plaza", "Paseo"),
        "towns": ("Madrid", "Barcelona", "Valencia", "Sevilla", "Zaragoza", "Málaga"),
    },
    "zh": {
        "ordinary": ("禁止吸烟", "安全出口", "营业中", "暂停营业", "小心台阶", "闲人免进", "药店", "面包店", "超市",
                     "邮局", "火车站", "停车场", "打折", "员工通道", "入口", "出口", "收银台", "服务台", "洗手间",
                     "政府通过新法律", "物价继续上涨", "体育", "天气", "新闻", "文化", "经济", "今晚", "餐厅", "咖啡馆",
                     "书店", "医院", "市政府", "新鲜面包", "酒店", "派出所", "儿童乐园", "禁止停车", "私人领地",
                     "3号线", "2号出口"),
        "first": ("伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛"),
        "last": ("王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭"),
        "titles": ("先生", "女士", "小姐", "老师"),
        "streets": ("路", "街", "大道", "巷"),
        "towns": ("北京市朝阳区", "上海市浦东新区", "广州市天河区", "深圳市南山区", "成都市武侯区", "杭州市西湖区"),
    },
}
PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
LANGUAGES = tuple(VOCAB)


def pick(rng: np.random.Generator, items: Sequence[str]) -> str:
    return items[int(rng.integers(len(items)))]


def digits(rng: np.random.Generator, n: int) -> str:
    return "".join(str(d) for d in rng.integers(0, 10, size=n))


def letters(rng: np.random.Generator, n: int) -> str:
    return "".join(pick(rng, LETTERS) for _ in range(n))


def vocab(lang: str, name: str, half: str) -> list[str]:
    """`VOCAB[lang][name]`'s half: even (A) or odd (B) positions."""
    return list(VOCAB[lang][name][0 if half == "A" else 1 :: 2])


def phone(rng: np.random.Generator, region: str) -> str:
    """A phone number of `region` (ISO 3166 code) as a sign or a card prints it (module docstring)."""
    import phonenumbers as pn

    kind = pick(rng, ("MOBILE", "FIXED_LINE"))
    example = pn.example_number_for_type(region, getattr(pn.PhoneNumberType, kind))
    nsn = str(example.national_number)
    keep = min(3, len(nsn) - 4)  # the leading digits pick the format; the rest are fresh
    number = pn.parse(f"+{example.country_code}{nsn[:keep]}{digits(rng, len(nsn) - keep)}", None)
    style = pick(rng, ("NATIONAL", "INTERNATIONAL", "E164", "NATIONAL", "INTERNATIONAL"))
    text = pn.format_number(number, getattr(pn.PhoneNumberFormat, style))
    if style == "INTERNATIONAL" and rng.random() < 0.3:
        text = "00" + text[1:]
    text = text.replace(" ", pick(rng, (" ", " ", ".", "-", "/", " ")))
    return pick(rng, PREFIXES) + text


def three_by_three(rng: np.random.Generator) -> str:
    """Spain's, Czechia's and Poland's usual print: "Tel." and three groups of three digits."""
    return f"{pick(rng, ('Tel. ', 'tel. ', 'Tel: ', 'Tél. ', ''))}{pick(rng, '679')}{digits(rng, 2)} {digits(rng, 3)} {digits(rng, 3)}"


def _name(rng: np.random.Generator, lang: str, half: str) -> str:
    first, last = pick(rng, vocab(lang, "first", half)), pick(rng, vocab(lang, "last", half))
    title = pick(rng, VOCAB[lang]["titles"])
    if lang == "zh":
        return pick(rng, (f"{last}{first}", f"{last}{first}", f"{last}{title}", f"联系人：{last}{first}"))
    return pick(rng, (f"{first} {last}", f"{last}, {first}", f"{title} {last}", f"{first[0]}. {last}",
                       f"{title} {first} {last}", f"{last} {first}"))  # fmt: skip


def _address(rng: np.random.Generator, lang: str, half: str) -> str:
    street = pick(rng, VOCAB[lang]["streets"])
    town, last = pick(rng, VOCAB[lang]["towns"]), pick(rng, vocab(lang, "last", half))
    n = int(rng.integers(1, 200))
    return {
        "cs": f"{last}ova {n}, {digits(rng, 3)} {digits(rng, 2)} {town}" if rng.random() < 0.5 else f"{street} {last} {n}",
        "pl": f"{street} {last}a {n}/{rng.integers(1, 40)}, {digits(rng, 2)}-{digits(rng, 3)} {town}",
        "de": f"{last}{street.lower()} {n}, {digits(rng, 5)} {town}" if rng.random() < 0.5 else f"{last}-{street} {n}",
        "fr": f"{n} {street} {pick(rng, ('de la', 'du', 'des'))} {last}, {digits(rng, 5)} {town}",
        "es": f"{street} de {last}, {n}, {digits(rng, 5)} {town}" if rng.random() < 0.5 else f"C/ {last} {n}",
        "zh": f"{town}{pick(rng, ('建国', '中山', '人民', '解放', '和平', '新华'))}{street}{n}号",
    }[lang]


def _cn_id(rng: np.random.Generator) -> str:
    body = f"{pick(rng, ('110101', '310115', '440106', '510107', '330106'))}19{digits(rng, 2)}0{rng.integers(1, 10)}1{rng.integers(0, 10)}{digits(rng, 3)}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


def _id(rng: np.random.Generator, lang: str) -> str:
    return {
        "cs": f"r.č. {digits(rng, 6)}/{digits(rng, 4)}" if rng.random() < 0.5 else f"OP č. {digits(rng, 9)}",
        "pl": f"PESEL {digits(rng, 11)}" if rng.random() < 0.5 else f"{letters(rng, 3)} {digits(rng, 6)}",
        "de": f"Ausweis-Nr. {letters(rng, 1)}{digits(rng, 2)}{letters(rng, 1)}{digits(rng, 5)}",
        "fr": f"N° SS {digits(rng, 1)} {digits(rng, 2)} {digits(rng, 2)} {digits(rng, 2)} {digits(rng, 3)} {digits(rng, 3)} {digits(rng, 2)}",
        "es": f"DNI {digits(rng, 8)}{letters(rng, 1)}" if rng.random() < 0.5 else f"NIE {letters(rng, 1)}{digits(rng, 7)}{letters(rng, 1)}",
        "zh": f"身份证号：{_cn_id(rng)}" if rng.random() < 0.5 else _cn_id(rng),
    }[lang]


def _plate(rng: np.random.Generator, lang: str) -> str:
    return {
        "cs": f"{digits(rng, 1)}{letters(rng, 1)}{digits(rng, 1)} {digits(rng, 4)}",
        "pl": f"{letters(rng, 2)} {digits(rng, 5)}" if rng.random() < 0.5 else f"{letters(rng, 3)} {digits(rng, 2)}{letters(rng, 2)}",
        "de": f"{letters(rng, 1)}-{letters(rng, 2)} {digits(rng, 3)}" if rng.random() < 0.5 else f"{letters(rng, 2)} {letters(rng, 2)} {digits(rng, 4)}",
        "fr": f"{letters(rng, 2)}-{digits(rng, 3)}-{letters(rng, 2)}",
        "es": f"{digits(rng, 4)} {letters(rng, 3)}",
        "zh": f"{pick(rng, PROVINCES)}{letters(rng, 1)}{pick(rng, ('·', ' ', ''))}{digits(rng, 3)}{letters(rng, 1)}{digits(rng, 1)}",
    }[lang]


PERSONAL: dict[str, Callable[[np.random.Generator, str, str], str]] = {
    "name": _name,
    "phone": lambda r, lang, h: three_by_three(r) if r.random() < 0.2 else phone(r, pick(r, EU_AND_CN)),
    "id number": lambda r, lang, h: _id(r, lang),
    "address": _address,
    "plate": lambda r, lang, h: _plate(r, lang),
}


def _cased(rng: np.random.Generator, text: str) -> str:
    return pick(rng, (text.upper(), text, text, text.lower()))


def corpus(lang: str, n: int, *, half: str, seed: int = 0) -> list[tuple[str, str, str]]:
    """n (kind, text, "ordinary" | "personal") rows in `lang`, half of each; OCR casing varies."""
    rng = np.random.default_rng([seed, LANGUAGES.index(lang)])
    rows = []
    for i in range(n):
        if i % 2 == 0:
            rows.append(("ordinary", _cased(rng, pick(rng, vocab(lang, "ordinary", half))), "ordinary"))
        else:
            kind = pick(rng, list(PERSONAL))
            rows.append((kind, PERSONAL[kind](rng, lang, half), "personal"))
    return rows


def phones(n: int, *, seed: int = 0) -> list[tuple[str, str, str]]:
    """n phone numbers: each region of `EU_AND_CN` in turn, and every fifth one three groups of three."""
    rng = np.random.default_rng([seed, 99])
    return [(region, phone(rng, region) if i % 5 else three_by_three(rng), "personal")
            for i, region in enumerate(EU_AND_CN[i % len(EU_AND_CN)] for i in range(n))]
