"""Three synthetic personas, so everything runs (and is tested) with no account and no network.

Each persona has its own vocabulary and voice, different enough that a classifier can tell them
apart and a small model learns something:

- demo_ada: an astronomer who lives on coffee; lowercase night-time musings.
- demo_bo: a loud football fan; CAPS, "!!!", emoji and #hashtags.
- demo_cy: a cook posting recipes, about a third of them in Japanese (CJK text matters).

The timelines are messy on purpose, like real ones: retweets, replies, quotes, t.co links in
odd places, HTML entities (the X API escapes & < > in text), emoji, one-word tweets, exact
duplicates, doubled spaces and newlines. Output is a pure function of (handle, n, seed): the
generator is seeded with zlib.crc32 of the handle, never Python's per-process hash().
"""

from __future__ import annotations

import html
import random
import re
import string
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd

from huggingtweets.errors import UserError
from huggingtweets.ingest.posts import to_frame, validate_handle

PERSONAS = {
    "demo_ada": {
        "display_name": "ada ☕🔭",
        "description": "astronomer and coffee person; lowercase musings about the night sky",
    },
    "demo_bo": {
        "display_name": "BO ⚽ UP THE ROVERS",
        "description": "loud football fan; CAPS, '!!!', emoji and #hashtags",
    },
    "demo_cy": {
        "display_name": "Cy | 料理",
        "description": "home cook writing recipes, in English and Japanese",
    },
}

START = datetime(2021, 1, 1, tzinfo=UTC)
UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TWITTER_EPOCH_MS = 1288834974657  # ids are snowflakes: milliseconds since this, shifted left 22

# Share of each kind of post; the rest are original posts.
KINDS = {"retweet": 0.08, "reply": 0.15, "quote": 0.03, "short": 0.05}

CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")


@dataclass(frozen=True)
class Style:
    words: dict[str, list[str]]  # slot name -> choices; templates say {slot}
    originals: list[str]
    replies: list[str]  # written after "@friend "
    retweets: list[str]  # someone else's post, written after "RT @friend: "
    quotes: list[str]  # comment in front of the quoted post's link
    shorts: list[str]
    friends: list[str]
    emoji: list[str]
    emoji_rate: float  # chance of a trailing emoji run
    max_emoji: int
    mean_gap_hours: float  # posting rhythm
    japanese: float = 0.0  # share of originals/replies/retweets taken from the ja_ lists
    ja_originals: tuple[str, ...] = ()
    ja_replies: tuple[str, ...] = ()
    ja_retweets: tuple[str, ...] = ()


# The word lists read better packed than one word a line.
# fmt: off
ADA = Style(
    words={
        "obj": [
            "jupiter", "saturn", "the moon", "orion", "the pleiades", "andromeda", "venus", "mars",
            "the milky way", "vega", "betelgeuse", "the ring nebula", "m13", "cassiopeia", "sirius",
            "the crab nebula", "a waxing gibbous", "the zodiacal light", "the double cluster",
            "comet c/2022 e3",
        ],
        "coffee": [
            "a flat white", "an oat cortado", "the ethiopian pour-over", "cold brew",
            "a double espresso", "the kenyan beans", "a moka pot of something dark",
            "decaf (don't tell anyone)", "a v60 of the washed colombian", "a cafe au lait",
            "instant coffee from the dome kettle",
        ],
        "time": [
            "3am", "just past midnight", "4:40am", "an hour before dawn", "dusk", "11pm",
            "blue hour", "2:15am", "the last hour of darkness",
        ],
        "place": [
            "the roof", "the observatory", "the dome", "the back field",
            "the car park behind the lab", "the balcony", "the hill above town",
        ],
        "adj": [
            "ridiculously bright", "soft and blurry", "perfectly still", "shimmering",
            "low on the horizon", "hiding behind cirrus", "unreasonably beautiful",
            "steady for once", "pale orange", "sharp as anything",
        ],
        "feeling": [
            "tiny", "calm", "very awake", "weirdly hopeful", "like a speck", "grateful",
            "sleepy but happy", "a bit emotional", "completely at peace",
        ],
        "thing": [
            "photons", "the seeing", "dark adaptation", "the guide star", "the spectrograph",
            "flat fields", "the dew heater", "the tracking mount", "the ccd", "the focuser",
            "the finder scope", "long exposures",
        ],
        "fact": [
            "light from andromeda left before there were people to see it",
            "the sun is a pretty average star and that's fine",
            "most of the universe is stuff we can't see",
            "we're all made of old supernova dust",
            "neutron stars spin hundreds of times a second",
            "saturn would float in a big enough bathtub",
            "a day on venus is longer than its year",
            "the moon drifts away about 3.8 cm a year",
            "every iron atom in my coffee spoon came from a dying star",
            "some of the stars we see are already gone",
        ],
        "verb": [
            "grinding beans", "waiting for the clouds", "calibrating", "reducing data",
            "writing the proposal", "staring at spectra", "refocusing", "debugging the pipeline",
            "descaling the espresso machine", "grading lab reports",
        ],
        "weather": [
            "clouds rolled in", "the seeing was awful", "the wind picked up",
            "the humidity hit 95%", "fog everywhere", "clear skies all night",
            "a thin haze over everything", "frost on the dome",
        ],
        "rating": [
            "solid 7/10", "too bitter", "perfect, no notes",
            "tastes like a campfire, in a good way", "a bit sour but i respect it",
            "would drink again at 3am",
        ],
    },
    originals=[
        "{time} on {place}. {obj} is {adj} and i feel {feeling}",
        "thinking about how {fact}",
        "{n} hours of observing, {n} cups of coffee. {obj} was worth it",
        "pulled {coffee} & watched {obj} climb over the trees",
        "{weather}. so it's {coffee} and {thing} tonight instead",
        "hot take: {coffee} tastes better at {time}",
        "if you're up at {time}, look for {obj}. it's {adj}",
        "some nights the sky is {adj} and you forget about {thing} for a while",
        "coffee ratio tonight: 1:{n}. result: {feeling}",
        "spent the afternoon {verb}. {obj} will still be there tomorrow",
        "nobody warns you that astronomy is 80% {verb} and 20% {obj}",
        "{thing} <3",
        "{obj} -> {obj}. that's the whole plan for tonight",
        "quietly in love with {obj} again",
        "reminder that {fact}. anyway, {coffee} time",
        'my notebook from last night just says "{obj}!!" and a coffee ring',
        "{weather}.\nback to {verb} i guess",
        "everything i know about patience i learned from {thing}",
        "first light on the new {thing} tonight. feeling {feeling}",
        "tried {coffee} at the new place on campus. {rating}",
        "{time}, {coffee}, {obj}. the holy trinity",
        "students asked why i look tired. i said {obj} and they nodded like that explained it",
        "the trick to {thing} is the same as the trick to {coffee}: patience & a good grinder",
        "{weather} but {obj} peeked through for a minute and honestly that's enough",
        "writing this from {place} at {time}. {obj} says hi",
    ],
    replies=[
        "yes!! {obj} was {adj} from here too",
        "honestly {coffee} fixes most things",
        "i think {fact}, but don't quote me",
        "did you try {verb} first? that usually sorts out {thing}",
        "same here, {weather}",
        "ooh send me the raw frames",
        "that's gorgeous. what exposure?",
        "we should do a coffee & {obj} night soon",
        "lol",
        "so true",
        "{rating}, agree",
    ],
    retweets=[
        "New image of {obj} from last night's run. The detail is incredible",
        "Reminder: {fact}.",
        "Our dark-sky public night is back! Come see {obj} through the big telescope",
        "Specialty coffee tip: grind fresh, weigh your beans, and try {coffee}.",
        "Huge congratulations to the team on the {thing} upgrade 🎉",
        "Tonight's forecast for stargazers: {weather}. Best target: {obj}.",
    ],
    quotes=[
        "this is the kind of thing that makes me love this job",
        "look at {obj} in this!!",
        "saving this for my next {coffee}",
        "the {thing} on this one...",
        "{fact}, and yet here we are",
    ],
    shorts=[
        "lol", "so true @{friend}", "oh no", "same", "clouds. again.", "coffee?", "✨", "wow",
        "ok but why", "hmm", "brb, {obj}",
    ],
    friends=[
        "stargazer_kim", "darkskies", "latte_lab", "orbit_ops", "nightshift_nina", "photon_pete",
        "roastery_rae",
    ],
    emoji=["☕", "🔭", "✨", "🌙", "🪐", "🌌", "💫"],
    emoji_rate=0.25,
    max_emoji=1,
    mean_gap_hours=20,
)

BO = Style(
    words={
        "team": ["ROVERS", "the Rovers", "OUR LADS", "the boys", "ROVERS FC"],
        "rival": [
            "CITY", "Athletic", "Wanderers", "Harbour Town", "Dockside FC", "Northgate", "Rangers",
            "the Saints",
        ],
        "player": [
            "OKAFOR", "Lindqvist", "MENDES", "Baptiste", "KOWALSKI", "Da Silva", "Moreno",
            "the new keeper", "our number 9", "little Jonesy", "TANAKA",
        ],
        "reaction": [
            "UNBELIEVABLE", "WHAT A GAME", "GET IN", "COME ONNNN", "SCENES", "ABSOLUTE CINEMA",
            "I'M SHAKING", "LETS GOOOO", "NO WAY", "WHAT A NIGHT",
        ],
        "tag": [
            "#COYR", "#MatchDay", "#UpTheRovers", "#NeverGiveUp", "#DerbyDay", "#VAR",
            "#DeadlineDay", "#Football", "#AwayDays", "#RoversTillIDie",
        ],
        "bad": [
            "the ref", "VAR", "our defending", "the linesman", "the midfield", "the manager's subs",
            "that back pass", "the pitch", "the kick off time",
        ],
        "food": ["pies", "chips", "pints", "burgers", "a bacon roll", "bovril"],
        "pub": ["the Crown", "the Red Lion", "the club bar", "Dave's sofa", "the Anchor"],
        "kit": ["GORGEOUS", "A CRIME", "actually decent", "BEAUTIFUL", "a bit much", "CLEAN"],
        "insult": [
            "my nan in goal", "a shopping trolley", "a traffic cone", "a sunday league side",
        ],
    },
    originals=[
        "{reaction}!!! {player} IN THE {minute}TH MINUTE",
        "{team} {score} {rival}. {reaction}!!! {tag}",
        "{bad} WAS A DISGRACE TODAY!!! {tag}",
        "matchday. {pub} & {food} then the ground. {reaction}",
        "who else is watching {team} vs {rival} tonight?? {tag}",
        "{player} is the best player in this league and i will not be taking questions",
        "HONESTLY {bad} needs sorting before saturday",
        "SOLD OUT AWAY END!!! {n} THOUSAND OF US",
        "can't sleep. still thinking about {player}'s miss",
        "{player} > anyone {rival} have ever had. FACT.",
        "transfer rumour: {player} to {rival}??? absolutely NOT",
        "{score} at half time. {bad} < {insult}. {tag}",
        "3 POINTS!!! {team} TOP OF THE TABLE!!! {tag} {tag}",
        "LISTEN. {player}. {reaction}.",
        "WE GO AGAIN SATURDAY\n{tag}",
        "rain, {food}, {score} loss. still love this club",
        "{rival} fans awfully quiet today 🤫 {tag}",
        "ticket for {rival} away sorted!!! {reaction}",
        "NEW KIT DROPPED AND IT'S {kit}!!! {tag}",
        "{n} games unbeaten!!! {reaction} {tag}",
        "if {player} doesn't start against {rival} i'm writing to the club",
        "FULL TIME!!! {team} {score} {rival}!!! {reaction}!!!",
        "{bad} again!!! how many times!!! {tag}",
        "just met {player} outside {pub}!!! {reaction}!!!",
        "DERBY WEEK!!! {rival} we are coming for you {tag} {tag}",
    ],
    replies=[
        "MATE {reaction}!!!",
        "no chance {player} starts saturday",
        "{bad} cost us AGAIN",
        "see you at {pub} before kick off!!",
        "{score}, {player} brace. calling it now",
        "agree 100%",
        "nah you're wrong about {player} and you know it",
        "lol",
        "GET IN",
        "{food} on me if we win!!!",
    ],
    retweets=[
        "FULL TIME: Rovers {score} {rival}",
        "GOAL! {player} makes it {score}!",
        "Team news: {player} starts, {player} on the bench.",
        "Tickets for the {rival} game go on sale Friday at 9am",
        "Highlights are up! Relive Rovers vs {rival} 🎥",
        "Injury update: {player} back in full training this week.",
    ],
    quotes=[
        "{reaction} LOOK AT THIS", "watch this 100 times", "{player} you beauty",
        "this is why we sing", "{bad} needs to see this!!!",
    ],
    shorts=[
        "lol", "GET IN", "so true @{friend}", "!!!", "NOOOO", "COME ON", "😭😭😭", "ref?????",
        "yes lad", "GOAL",
    ],
    friends=[
        "rovers_dan", "terrace_talk", "awaydays_al", "kop_kev", "fanzine_fi", "pie_league",
        "matchday_mo",
    ],
    emoji=["⚽", "🔥", "😤", "🏆", "💪", "🙌", "😭", "🔵", "📣", "🍺"],
    emoji_rate=0.7,
    max_emoji=3,
    mean_gap_hours=9,
)

CY = Style(
    words={
        "dish": [
            "miso soup", "chicken katsu", "okonomiyaki", "tamagoyaki", "nikujaga",
            "a big pot of dashi", "mapo tofu", "udon", "onigiri", "gyoza", "sourdough focaccia",
            "shakshuka", "ratatouille", "shoyu ramen", "a lemon tart",
        ],
        "ingredient": [
            "kombu", "bonito flakes", "white miso", "ginger", "scallions", "shiitake", "daikon",
            "sesame oil", "brown butter", "garlic", "yuzu", "mirin", "soy sauce", "shiso", "leeks",
        ],
        "technique": [
            "blooming the spices", "a slow simmer", "salting the night before",
            "a screaming hot pan", "resting the dough", "toasting the sesame", "straining twice",
            "cutting against the grain", "never stirring the rice",
        ],
        "amount": [
            "2 tbsp", "a pinch of", "100 g", "1 tsp", "a splash of", "3 cloves of", "half a cup of",
            "200 ml of",
        ],
        "time": ["10 minutes", "20 minutes", "an hour", "overnight", "45 minutes", "3 minutes"],
        "tip": [
            "don't boil the miso", "taste as you go", "salt your pasta water", "let it rest",
            "use a thermometer", "wash the rice until the water runs clear", "dry your tofu first",
            "keep your knife sharp",
        ],
        "ja_dish": [
            "味噌汁", "肉じゃが", "親子丼", "焼き魚", "茶碗蒸し", "天ぷら", "おでん", "カレー", "炊き込みご飯", "豚汁", "だし巻き卵",
            "筑前煮", "鯖の味噌煮", "冷やしうどん",
        ],
        "ja_ing": [
            "大根", "人参", "鶏もも肉", "豆腐", "しめじ", "ごぼう", "白菜", "長ねぎ", "昆布", "かつお節", "生姜", "油揚げ",
        ],
        "ja_point": ["出汁", "火加減", "下ごしらえ", "塩加減", "寝かせる時間", "隠し味の味醂"],
        "ja_season": ["春", "夏", "秋", "冬"],
        "ja_time": ["十分", "二十分", "一時間", "一晩"],
    },
    originals=[
        "Recipe: {dish}. {amount} {ingredient}, {amount} {ingredient}, simmer {time}. Done.",
        "Tonight: {dish} with {ingredient} & {ingredient}. The secret is {technique}.",
        "Kitchen tip: {tip}. Trust me.",
        "Made {dish} for {n} people today. Zero leftovers.",
        "Step 1: {technique}.\nStep 2: {amount} {ingredient}.\nStep 3: eat.",
        "Controversial: {dish} is better the next day.",
        "The market had amazing {ingredient} this morning, so {dish} it is.",
        "Oil at 170°C < 180°C for the second fry. That's the whole {dish} secret.",
        "If your {dish} tastes flat, add {amount} {ingredient}. Every time.",
        "Meal prep Sunday: {dish}, {dish}, and too much rice.",
        "Testing a new {dish} recipe. Version {n}. Getting closer.",
        "{ingredient} + {ingredient} = the best {dish} I've made all year.",
        "Reminder: {tip}. Your {dish} will thank you.",
        "Slow morning. {dish}, coffee, and {technique} for tonight's dinner.",
        "Why does {dish} always taste better at my mum's? (It's {technique}. It's always that.)",
    ],
    replies=[
        "yes! add {amount} {ingredient} next time", "that looks perfect. {tip}",
        "I'd go with {technique} there", "recipe coming this weekend!", "lol", "so true",
    ],
    retweets=[
        "Seasonal produce guide: {ingredient} is at its best right now",
        "New video: how to make {dish} at home",
        "Chef's tip: {tip}.",
        "Our {dish} workshop is back next month, {n} spots left!",
    ],
    quotes=[
        "saving this recipe", "this is exactly how my grandmother made {dish}", "これは作りたい！",
        "needs more {ingredient} but otherwise yes",
    ],
    shorts=[
        "lol", "yum", "so true @{friend}", "美味しい！", "done.", "ごちそうさま", "need snacks",
        "rice ready 🍚",
    ],
    friends=[
        "umami_mika", "dashi_daily", "panfry_paul", "fermenting_fran", "kitchen_kenji",
        "bento_box_b",
    ],
    emoji=["🍜", "🍳", "🥢", "🍚", "🧄", "🔪", "🍋", "🥟"],
    emoji_rate=0.3,
    max_emoji=2,
    mean_gap_hours=28,
    japanese=0.35,
    ja_originals=(
        "「今日は{ja_dish}を作りました。{ja_point}が決め手です」",
        "{ja_season}の{ja_ing}は本当に美味しい。{ja_dish}にしました",
        "{ja_dish}のレシピ：{ja_ing}と{ja_ing}を{ja_time}煮込むだけ。簡単です！",
        "{ja_ing}が安かったので、{ja_dish}を作り置き。",
        "明日のお弁当は{ja_dish}。{ja_point}に気をつけます。",
        "{ja_dish}、{n}回目の挑戦。やっと{ja_point}が分かってきた気がする。",
        "今夜は{ja_dish}と{ja_dish}。ごちそうさまでした！",
        "料理のコツ：{ja_point}を大切に。{ja_dish}でも同じです。",
        "{ja_ing}と{ja_ing}で{ja_dish}。{ja_season}らしい味になりました。",
    ),
    ja_replies=(
        "ありがとうございます！{ja_point}が大事ですね", "美味しそう！今度{ja_dish}を作ってみます", "{ja_ing}を入れるのもおすすめです",
    ),
    ja_retweets=(
        "【新レシピ】{ja_dish}の作り方を公開しました", "{ja_season}野菜の特集です。{ja_ing}がおすすめ",
    ),
)
# fmt: on

STYLES = {"demo_ada": ADA, "demo_bo": BO, "demo_cy": CY}


def generate(handle: str, n: int = 400, seed: int = 0) -> pd.DataFrame:
    """`n` posts of a demo persona, as the canonical table. Same arguments, same bytes."""
    handle = validate_handle(handle).lower()
    if handle not in PERSONAS:
        raise UserError(
            f"@{handle} is not a demo persona; the demo personas are "
            + ", ".join(f"{h} ({p['description']})" for h, p in PERSONAS.items())
        )
    style = STYLES[handle]
    persona_index = list(PERSONAS).index(handle)
    rng = random.Random(int(seed) * 2**32 + zlib.crc32(handle.encode()))

    records = []
    when = START
    for i in range(int(n)):
        text, is_reply, is_retweet, is_quote = _post(style, rng)
        # Html-escape like the X API does: "&" arrives as "&amp;", "<" as "&lt;", ">" as "&gt;".
        text = html.escape(text, quote=False)
        # At least a minute apart, so times (and the ids made from them) strictly increase.
        gap = 60 + rng.expovariate(1 / (style.mean_gap_hours * 3600))
        when += timedelta(seconds=int(gap), milliseconds=rng.randrange(1000))
        millis = (when - UNIX_EPOCH) // timedelta(milliseconds=1)
        snowflake = ((millis - TWITTER_EPOCH_MS) << 22) | (persona_index << 12) | (i & 0xFFF)
        records.append(
            {
                "id": str(snowflake),
                "created_at": when,
                "text": text,
                "handle": handle,
                "display_name": PERSONAS[handle]["display_name"],
                "is_retweet": is_retweet,
                "is_reply": is_reply,
                "is_quote": is_quote,
                "lang": "ja" if CJK.search(text) else "en",
                "source": "demo",
            }
        )
    _add_duplicates(records, rng)
    return to_frame(records)


def _post(style: Style, rng: random.Random) -> tuple[str, bool, bool, bool]:
    """One post: (text, is_reply, is_retweet, is_quote), before html escaping."""
    friend = rng.choice(style.friends)
    japanese = rng.random() < style.japanese
    roll = rng.random()
    if roll < KINDS["retweet"]:
        pool = style.ja_retweets if japanese else style.retweets
        text = f"RT @{friend}: {_fill(rng.choice(pool), style, rng)}"
        if rng.random() < 0.5:
            text += " " + _url(rng)
        if len(text) > 140:  # retweets in archives are often cut like this
            text = text[:139] + "…"
        return text, False, True, False
    roll -= KINDS["retweet"]
    if roll < KINDS["reply"]:
        pool = style.ja_replies if japanese else style.replies
        mentions = f"@{friend} " + (f"@{rng.choice(style.friends)} " if rng.random() < 0.15 else "")
        text = _decorate(mentions + _fill(rng.choice(pool), style, rng), style, rng)
        return text, True, False, False
    roll -= KINDS["reply"]
    if roll < KINDS["quote"]:
        text = f"{_fill(rng.choice(style.quotes), style, rng)} {_url(rng)}"
        return text, False, False, True
    roll -= KINDS["quote"]
    if roll < KINDS["short"]:
        return _fill(rng.choice(style.shorts), style, rng, friend), False, False, False
    pool = style.ja_originals if japanese else style.originals
    text = _decorate(_fill(rng.choice(pool), style, rng), style, rng)
    return text, False, False, False


def _fill(template: str, style: Style, rng: random.Random, friend: str | None = None) -> str:
    used: set[str] = set()  # "{ingredient} & {ingredient}" should name two different things

    def slot(match: re.Match) -> str:
        name = match.group(1)
        if name == "n":
            return str(rng.randint(2, 12))
        if name == "minute":
            return str(rng.randint(1, 90))
        if name == "score":
            return f"{rng.randint(0, 5)}-{rng.randint(0, 4)}"
        if name == "friend":
            return friend or rng.choice(style.friends)
        word = rng.choice([w for w in style.words[name] if w not in used] or style.words[name])
        used.add(word)
        return word

    return re.sub(r"\{(\w+)\}", slot, template)


def _decorate(text: str, style: Style, rng: random.Random) -> str:
    """Emoji, links and untidy whitespace, placed the way people actually post them."""
    if rng.random() < style.emoji_rate:
        run = "".join(rng.choice(style.emoji) for _ in range(rng.randint(1, style.max_emoji)))
        text += ("" if CJK.search(text) else " ") + run
    roll = rng.random()
    if roll < 0.06:  # mid-text, after a sentence or clause break
        breaks = [m.end() for m in re.finditer(r"[.,:!?。、] ?", text)][:-1]
        breaks = breaks or [m.start() for m in re.finditer(" ", text)]  # else between words
        if breaks:
            at = rng.choice(breaks)
            text = f"{text[:at].rstrip()} {_url(rng)} {text[at:].lstrip()}"
        else:
            text += " " + _url(rng)
    elif roll < 0.13:
        text += " " + _url(rng)
    elif roll < 0.17:
        text += "\n" + _url(rng)
    roll = rng.random()
    if roll < 0.05:
        text = text.replace(" ", "  ", 1)
    elif roll < 0.08:
        text = text.replace(". ", ".\n\n", 1)
    elif roll < 0.10:
        text += "  "
    return text


def _url(rng: random.Random) -> str:
    return "https://t.co/" + "".join(rng.choices(string.ascii_letters + string.digits, k=10))


def _add_duplicates(records: list[dict], rng: random.Random) -> None:
    """People post the same thing twice: copy a couple of early originals onto later posts."""
    plain = [
        i for i, r in enumerate(records) if not (r["is_retweet"] or r["is_reply"] or r["is_quote"])
    ]
    if len(plain) < 20:
        return
    half = len(plain) // 2
    for source, target in zip(rng.sample(plain[:half], 2), rng.sample(plain[half:], 2)):
        records[target]["text"] = records[source]["text"]
        records[target]["lang"] = records[source]["lang"]
