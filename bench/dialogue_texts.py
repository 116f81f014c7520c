"""Wording tables of bench/dialogues.py, in English and Korean (a text table: long by nature).

Both languages have tables of the same lengths, so one seed draws the same story, value and
filler in each. Korean templates mark particles that depend on the previous syllable
("(이)가", "(을)를", "(으)로"…); `josa` picks the right form.
"""

from __future__ import annotations

import re
from typing import Any

_SINGLE_EN = (
    (
        "Did you ever find a place for the team offsite, {p}?",
        "Yes! We booked {v} for it, the whole second floor.",
        "Which venue did {p} end up reserving for the team offsite?",
        ("the Harbour Hall", "Casa Verde", "the Old Mill", "Loft 21"),
    ),
    (
        "How did the dentist go, {p}?",
        "Not great, I need a crown on a molar. They booked it for {v}.",
        "When is {p} getting the crown put in?",
        ("March 30th", "next Thursday", "the 14th", "Friday at 8"),
    ),
    (
        "{p}, I heard you adopted a cat?",
        "Yes, a grey rescue! We named her {v}.",
        "What's the name of the rescue cat {p} took in?",
        ("Mochi", "Pepper", "Olive", "Biscuit"),
    ),
    (
        "Did you sell the old car in the end?",
        "Sold it for {v}, less than I hoped but fine.",
        "How much money did {p} get for the old car?",
        ("4,200 euros", "3,900 euros", "5,100 euros", "2,800 euros"),
    ),
    (
        "What are we reading for book club next month?",
        "I picked {v}. It's short, don't worry.",
        "Which book did {p} choose for the next book club?",
        ("Piranesi", "Klara and the Sun", "The Remains of the Day", "Stoner"),
    ),
    (
        "Anything you can't eat, {p}? I'm cooking on Saturday.",
        "I'm allergic to {v}, everything else is fine.",
        "What is {p} allergic to again?",
        ("shellfish", "peanuts", "sesame", "kiwi"),
    ),
    (
        "How was the half marathon, {p}?",
        "Brutal, but I finished in {v}.",
        "How long did {p} take to run the half marathon?",
        ("1:52", "2:05", "1:47", "1:58"),
    ),
    (
        "When are you moving into the new flat?",
        "The keys come on {v}, so that weekend.",
        "When does {p} get the keys to the new apartment?",
        ("May 3rd", "the 20th", "June 1st", "the 11th"),
    ),
    (
        "Which laptop did you go for in the end?",
        "The {v}. The battery lasts forever.",
        "What laptop did {p} buy?",
        ("ThinkPad X1", "MacBook Air", "Framework 13", "Dell XPS"),
    ),
    (
        "Did you find a guitar teacher, {p}?",
        "Yes, a guy called {v}, lessons on Tuesdays.",
        "Who is {p} learning guitar with?",
        ("Marco", "Tomas", "Yusuf", "Leon"),
    ),
    (
        "Where's your cousin's wedding going to be?",
        "In {v}, at an old vineyard.",
        "Where is {p}'s cousin getting married?",
        ("Sintra", "Bordeaux", "Tuscany", "Mendoza"),
    ),
    (
        "What's the wifi password at the cabin?",
        "It's {v}, all lowercase.",
        "What did {p} say the cabin wifi password was?",
        ("bluefjord22", "pinecone88", "lakeside7", "northstar5"),
    ),
    (
        "What are you getting your dad for his birthday?",
        "Probably {v}, he's been hinting for months.",
        "What present is {p} planning for their father's birthday?",
        ("a record player", "a fishing rod", "a smartwatch", "a pasta machine"),
    ),
    (
        "What time is your flight on Friday?",
        "{v}, so I'll leave straight from work.",
        "When does {p}'s Friday flight leave?",
        ("6:40 pm", "7:15 pm", "5:50 pm", "9:05 pm"),
    ),
    (
        "Did the team agree on a database for Kestrel?",
        "We went with {v} in the end, after a long debate.",
        "Which database did {p}'s team decide on for Kestrel?",
        ("PostgreSQL", "SQLite", "MySQL", "CockroachDB"),
    ),
)

_SINGLE_KO = (
    (
        "{p}, 팀 워크숍 장소는 구했어?",
        "응! {v}(으)로 예약했어, 2층 전체로.",
        "{p}(이)가 팀 워크숍 장소로 어디를 잡았지?",
        ("하버홀", "카사베르데", "올드밀", "로프트21"),
    ),
    (
        "{p}, 치과는 어땠어?",
        "별로야, 어금니에 크라운을 씌워야 한대. {v}(으)로 잡아줬어.",
        "{p}(은)는 크라운 씌우는 날이 언제지?",
        ("3월 30일", "다음 주 목요일", "14일", "금요일 8시"),
    ),
    (
        "{p}, 고양이 입양했다며?",
        "응, 회색 구조묘야! 이름은 {v}(으)로 지었어.",
        "{p}(이)가 데려온 구조 고양이 이름이 뭐였지?",
        ("모찌", "후추", "올리브", "비스킷"),
    ),
    (
        "결국 예전 차는 팔았어?",
        "{v}에 팔았어, 생각보다 적게 받았지만 괜찮아.",
        "{p}(은)는 예전 차를 얼마 받고 넘겼지?",
        ("420만 원", "390만 원", "510만 원", "280만 원"),
    ),
    (
        "다음 달 독서 모임 책은 뭐야?",
        "{v}(으)로 골랐어. 짧으니까 걱정 마.",
        "다음 독서 모임 책으로 {p}(이)가 뭘 정했지?",
        ("피라네시", "클라라와 태양", "남아 있는 나날", "스토너"),
    ),
    (
        "{p}, 토요일에 요리하는데 못 먹는 거 있어?",
        "{v} 알레르기가 있어, 나머지는 다 괜찮아.",
        "{p}(은)는 무슨 알레르기가 있다고 했지?",
        ("갑각류", "땅콩", "참깨", "키위"),
    ),
    (
        "{p}, 하프 마라톤 어땠어?",
        "죽는 줄 알았는데 {v}에 완주했어.",
        "{p}(은)는 하프 마라톤을 얼마 만에 뛰었지?",
        ("1시간 52분", "2시간 5분", "1시간 47분", "1시간 58분"),
    ),
    (
        "새 집 이사는 언제야?",
        "{v}에 열쇠 받아, 그 주말에 들어가.",
        "{p}(은)는 새 아파트 열쇠를 언제 받지?",
        ("5월 3일", "20일", "6월 1일", "11일"),
    ),
    (
        "결국 노트북은 뭐로 샀어?",
        "{v}. 배터리가 엄청 오래 가.",
        "{p}(이)가 구입한 노트북이 뭐였지?",
        ("씽크패드 X1", "맥북 에어", "프레임워크 13", "델 XPS"),
    ),
    (
        "{p}, 기타 선생님은 찾았어?",
        "응, {v}(이)라는 분인데 화요일마다 레슨해.",
        "{p}(은)는 누구한테 기타를 배우지?",
        ("마르코", "토마스", "유수프", "레온"),
    ),
    (
        "사촌 결혼식은 어디서 해?",
        "{v}에서, 오래된 포도밭에서 한대.",
        "{p}의 사촌은 어디서 결혼하지?",
        ("신트라", "보르도", "토스카나", "멘도사"),
    ),
    (
        "오두막 와이파이 비번 뭐야?",
        "{v}(이)야, 전부 소문자.",
        "{p}(이)가 알려준 오두막 와이파이 비밀번호가 뭐였지?",
        ("bluefjord22", "pinecone88", "lakeside7", "northstar5"),
    ),
    (
        "아빠 생신 선물 뭐 할 거야?",
        "아마 {v}, 몇 달째 은근히 말씀하셨거든.",
        "{p}(은)는 아버지 생신 선물로 뭘 준비하지?",
        ("턴테이블", "낚싯대", "스마트워치", "파스타 기계"),
    ),
    (
        "금요일 비행기 몇 시야?",
        "{v}, 그래서 회사에서 바로 출발해.",
        "{p}의 금요일 비행기는 몇 시에 뜨지?",
        ("저녁 6시 40분", "저녁 7시 15분", "저녁 5시 50분", "밤 9시 5분"),
    ),
    (
        "케스트렐 데이터베이스는 팀에서 합의했어?",
        "긴 논쟁 끝에 결국 {v}(으)로 갔어.",
        "{p}네 팀은 케스트렐에 어떤 데이터베이스를 쓰기로 했지?",
        ("PostgreSQL", "SQLite", "MySQL", "CockroachDB"),
    ),
)

_MULTI_EN = (
    (
        "Big news: my {r} got the job at {c}!",
        "My {r} is moving to {city} next month for the new job.",
        "Which company hired {p}'s {r}, and where are they relocating?",
    ),
    (
        "My {r} is training for a triathlon in {city}.",
        "My {r} crashed the bike during training last week, nothing broken luckily.",
        "What happened to {p}'s {r} while preparing for the race in {city}?",
    ),
    (
        "My {r} opened a bakery called {c}!",
        "My {r} says the bakery is finally breaking even after six months.",
        "How is the bakery {c} that {p}'s {r} runs doing?",
    ),
    (
        "My {r} finally passed the driving test!",
        "My {r} bought a used van and wants to drive it to {city} this summer.",
        "Where does {p}'s {r}, the one who just got a licence, want to take the van?",
    ),
)

_MULTI_KO = (
    (
        "대박 소식: 우리 {r}(이)가 {c}에 합격했어!",
        "우리 {r}(이)가 새 직장 때문에 다음 달에 {city}(으)로 이사 가.",
        "{p}의 {r}(은)는 어느 회사에 붙었고 어디로 옮기지?",
    ),
    (
        "우리 {r}(이)가 {city} 철인3종 경기를 준비 중이야.",
        "우리 {r}(이)가 지난주 훈련하다가 자전거에서 넘어졌는데 다행히 안 다쳤대.",
        "{p}의 {r}(이)가 {city} 대회를 준비하다가 무슨 일이 있었지?",
    ),
    (
        "우리 {r}(이)가 {c}(이)라는 빵집을 열었어!",
        "우리 {r} 말로는 빵집이 여섯 달 만에 드디어 손익분기점을 넘었대.",
        "{p}의 {r}(이)가 하는 빵집 {c}, 장사는 어떻대?",
    ),
    (
        "우리 {r}(이)가 드디어 운전면허 시험에 붙었어!",
        "우리 {r}(이)가 중고 밴을 샀는데 이번 여름에 그걸로 {city}까지 가고 싶대.",
        "면허 딴 {p}의 {r}(은)는 그 밴을 몰고 어디에 가고 싶어 하지?",
    ),
)

_TEMPORAL_EN = (
    (
        "Back from {city}! The trip was amazing, the jet lag is not.",
        "Spent the whole weekend {a}, finally some rest.",
        "What did {p} do the weekend after getting back from the {city} trip?",
    ),
    (
        "Today was my last day at the old job, the {city} office threw me a party.",
        "First free days in ages, I've been {a}.",
        "What was {p} doing in the days after leaving the old job?",
    ),
    (
        "Concert tonight in {city}, I can't believe I got tickets!",
        "Still buzzing from the show. Yesterday I was {a}, to come down a bit.",
        "What did {p} do in the days after the {city} concert?",
    ),
    (
        "I'm off to my sister's wedding in {city} tomorrow, see you all next week.",
        "Home again. This week I've mostly been {a} to recover.",
        "How did {p} spend the week after the wedding in {city}?",
    ),
)

_TEMPORAL_KO = (
    (
        "{city}에서 돌아왔어! 여행은 최고였는데 시차 적응이 힘드네.",
        "주말 내내 {a}만 했어, 드디어 좀 쉬었네.",
        "{p}(은)는 {city} 여행에서 돌아온 다음 주말에 뭐 했지?",
    ),
    (
        "오늘 예전 회사 마지막 날이었어, {city} 사무실에서 파티를 열어줬어.",
        "진짜 오랜만에 쉬는 날이라 요즘 {a}만 하고 있어.",
        "{p}(은)는 예전 회사를 그만둔 뒤 며칠 동안 뭐 했지?",
    ),
    (
        "오늘 밤 {city}에서 콘서트야, 표 구한 게 아직도 안 믿겨!",
        "아직도 공연 여운이 남아 있어. 어제는 좀 진정하려고 {a}만 했어.",
        "{p}(은)는 {city} 콘서트 끝나고 며칠 동안 뭐 했지?",
    ),
    (
        "내일 {city}에서 언니 결혼식이라 다음 주에 봐.",
        "집에 왔어. 이번 주는 회복하느라 거의 {a}만 했어.",
        "{p}(은)는 {city} 결혼식 다녀온 다음 주를 어떻게 보냈지?",
    ),
)

_FILLER_EN = (
    "Anyone up for {foods} tonight?",
    "I could eat {foods} every day honestly.",
    "Has anyone watched {shows}? Worth it?",
    "Finished {shows} last night, that ending though.",
    "Ugh, I still have to {chores} before Sunday.",
    "Finally managed to {chores}, feels good.",
    "It's so {weather} out today.",
    "Forecast says {weather} all week, great.",
    "We should go to {places} again sometime.",
    "{p}, are you coming to {places} on Saturday?",
    "Running late, the tram is stuck again.",
    "lol same",
    "Can someone send me the photos from last time?",
    "I'm so tired, this week is endless.",
    "Does anyone have a charger I can borrow tomorrow?",
    "Happy Friday everyone!",
    "{p} you were right about {shows}, it gets better.",
    "I tried making {foods} at home, total disaster.",
    "Reminder: bring snacks for the meeting tomorrow.",
    "Haha, that's exactly what {p} said last time.",
)

_FILLER_KO = (
    "오늘 저녁에 {foods} 먹을 사람?",
    "솔직히 {foods}(은)는 매일 먹어도 질리지 않아.",
    "{shows} 본 사람 있어? 볼 만해?",
    "어젯밤에 {shows} 다 봤어, 결말 대박이야.",
    "아, 일요일 전에 {chores} 해야 하는데.",
    "드디어 {chores} 끝냈다, 속이 시원해.",
    "오늘 밖에 엄청 {weather}.",
    "일기예보 보니까 이번 주 내내 {weather}대.",
    "언제 {places}에 또 가자.",
    "{p}, 토요일에 {places} 올 거야?",
    "늦을 것 같아, 전철이 또 멈췄어.",
    "ㅋㅋ 나도",
    "지난번 사진 좀 보내줄 사람?",
    "너무 피곤해, 이번 주는 끝이 안 나네.",
    "내일 충전기 빌려줄 사람 있어?",
    "다들 불금 보내!",
    "{p} 말이 맞았어, {shows} 갈수록 재밌어.",
    "집에서 {foods} 만들어 봤는데 완전 망했어.",
    "내일 회의에 간식 챙겨 오는 거 잊지 마.",
    "ㅋㅋ {p}(이)가 지난번에 딱 그 말 했잖아.",
)

_DISTRACTORS_EN = (
    "Speaking of the {x}, any news?",
    "{p} was talking about the {x} again earlier.",
    "I keep forgetting to ask about the {x}.",
    "Not sure about the {x} yet, let's see.",
    "Did anyone follow up on the {x} thing?",
    "The {x} came up at lunch, long story.",
)

_DISTRACTORS_KO = (
    "{x} 말인데, 무슨 소식 있어?",
    "아까 {p}(이)가 또 {x} 얘기하더라.",
    "{x} 물어본다는 걸 자꾸 까먹어.",
    "{x}(은)는 아직 잘 모르겠어, 좀 보자.",
    "{x} 건은 누가 챙겨 봤어?",
    "점심 먹다가 {x} 얘기가 나왔는데 말하자면 길어.",
)

# Values are tuples of strings, or of string tuples for the story tables.
TEXTS: dict[str, dict[str, tuple[Any, ...]]] = {
    "en": {
        "people": ("Alice", "Bongani", "Chae-won", "Diego"),
        "single": _SINGLE_EN,
        "multi": _MULTI_EN,
        "temporal": _TEMPORAL_EN,
        "relatives": ("sister", "brother", "cousin", "aunt"),
        "companies": ("Orbis", "Lumen Labs", "Northwind", "Halcyon"),
        "cities": ("Lisbon", "Busan", "Osaka", "Vancouver"),
        "activities": (
            "repainting the balcony",
            "binge-watching old sitcoms",
            "baking bread",
            "sorting out the garden",
        ),
        "filler": _FILLER_EN,
        "distractors": _DISTRACTORS_EN,
        "topic_words": (
            "offsite",
            "dentist",
            "cat",
            "old car",
            "book club",
            "allergy",
            "half marathon",
            "new flat",
            "laptop",
            "guitar",
            "wedding",
            "wifi",
            "birthday present",
            "flight",
            "Kestrel database",
            "bakery",
            "triathlon",
            "new job",
            "trip",
            "weekend",
        ),
        "foods": ("ramen", "tacos", "pizza", "bibimbap", "dumplings", "curry"),
        "shows": ("The Bear", "Severance", "Shogun", "Slow Horses", "Bluey", "Arcane"),
        "chores": (
            "do my taxes",
            "clean the fridge",
            "fix the bike",
            "call the landlord",
            "do laundry",
            "renew my passport",
        ),
        "weather": ("hot", "rainy", "windy", "grey", "cold", "humid"),
        "places": ("the night market", "the lake", "that jazz bar", "the climbing gym", "IKEA"),
    },
    "ko": {
        "people": ("민지", "준호", "서연", "도윤"),
        "single": _SINGLE_KO,
        "multi": _MULTI_KO,
        "temporal": _TEMPORAL_KO,
        "relatives": ("언니", "동생", "사촌", "이모"),
        "companies": ("오르비스", "루멘랩스", "노스윈드", "할시온"),
        "cities": ("리스본", "부산", "오사카", "밴쿠버"),
        "activities": ("발코니 페인트칠", "옛날 시트콤 정주행", "빵 굽기", "정원 정리"),
        "filler": _FILLER_KO,
        "distractors": _DISTRACTORS_KO,
        "topic_words": (
            "워크숍",
            "치과",
            "고양이",
            "예전 차",
            "독서 모임",
            "알레르기",
            "하프 마라톤",
            "새 집",
            "노트북",
            "기타",
            "결혼식",
            "와이파이",
            "생신 선물",
            "비행기",
            "케스트렐 데이터베이스",
            "빵집",
            "철인3종",
            "새 직장",
            "여행",
            "주말",
        ),
        "foods": ("라멘", "타코", "피자", "비빔밥", "만두", "카레"),
        "shows": ("더 베어", "세브란스", "쇼군", "슬로 호시스", "블루이", "아케인"),
        "chores": (
            "세금 정리",
            "냉장고 청소",
            "자전거 수리",
            "집주인한테 전화",
            "빨래",
            "여권 갱신",
        ),
        "weather": ("덥네", "비 오네", "바람 부네", "흐리네", "춥네", "습하네"),
        "places": ("야시장", "호수", "그 재즈 바", "클라이밍장", "이케아"),
    },
}

_MARKED = re.compile(r"(\S)\((이|을|은|으|와|과|아)\)(가|를|는|로|과|랑|라는|야|와)")
# The last sound of a digit read in Korean, and of a Latin letter read in English: 0 (영), 1
# (일), 3 (삼), 6 (육), 7 (칠), 8 (팔) and L, M, N, R end in a consonant.
_FINAL_CONSONANT = frozenset("013678lmnr")


def _final(syllable: str) -> tuple[bool, bool]:
    """(ends in a consonant, that consonant is ㄹ)."""
    code = ord(syllable) - 0xAC00
    if 0 <= code < 11172:
        final = code % 28
        return final != 0, final == 8
    ends = syllable.lower() in _FINAL_CONSONANT
    return ends, syllable.lower() in "178l"


def josa(text: str) -> str:
    """Resolve the marked particles of `text` ("서연(이)가" → "서연이", "민지(이)가" → "민지가")."""

    def pick(match: re.Match[str]) -> str:
        before, optional, rest = match.group(1), match.group(2), match.group(3)
        consonant, rieul = _final(before)
        if optional == "으":  # (으)로: ㄹ takes 로 like a vowel
            return before + ("으로" if consonant and not rieul else "로")
        if optional in ("이", "아") and rest in ("가", "야", "랑", "라는"):
            if rest == "가":
                return before + ("이" if consonant else "가")
            return before + (optional + rest if consonant else rest)
        return before + (optional if consonant else rest)

    return _MARKED.sub(pick, text)
