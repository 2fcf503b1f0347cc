"""Generated text-classification corpora for examples and tests: English product reviews (sentiment), English news
snippets (topic), and Chinese reviews written without spaces.

They are made to be hard in the ways real text is: a large vocabulary drawn at random, negation that flips a word's
polarity ("not good"), contrast clauses ("great screen but the battery died"), words shared by all classes, mixed case,
punctuation, numbers, URLs and emoji, typos, and ``label_noise`` of the labels flipped at random. A linear model
over word n-grams does well but not perfectly on them.
"""

from __future__ import annotations

import numpy as np

from ...rules.errors import InputValueError

_EN_ITEMS = ["phone", "laptop", "movie", "hotel", "restaurant", "headphones", "book", "camera", "app", "blender",
             "jacket", "game", "sofa", "printer", "course", "flight", "coffee maker", "tablet", "series", "album"]
_EN_ASPECTS = ["battery", "screen", "plot", "service", "staff", "price", "sound", "design", "delivery", "food",
               "support", "quality", "room", "ending", "interface", "camera", "fabric", "keyboard", "seats", "taste"]
_EN_POS = ["good", "great", "excellent", "amazing", "lovely", "solid", "reliable", "fantastic", "wonderful",
           "impressive", "comfortable", "smooth", "brilliant", "pleasant", "superb", "helpful", "fast", "sturdy",
           "delightful", "worth it"]
_EN_NEG = ["bad", "terrible", "awful", "poor", "disappointing", "cheap", "broken", "slow", "noisy", "useless",
           "horrible", "flimsy", "rude", "boring", "overpriced", "buggy", "mediocre", "annoying", "unreliable",
           "a waste of money"]
_EN_NEGATORS = ["not", "never", "hardly", "not at all", "far from", "not really"]
_EN_INTENS = ["", "", "very ", "really ", "quite ", "super ", "incredibly ", "pretty ", "so "]
_EN_OPEN = ["", "", "Honestly, ", "Well, ", "I think ", "To be fair, ", "Overall ", "After 2 weeks, ", "Update: ",
            "My wife says ", "Bought it on sale. "]
_EN_CLOSE = ["", "", "", ".", "!", "!!", " :)", " :(", " 👍", " 😡", " Would buy again?", " 5/10.",
             " See https://example.com/review for photos.", " Order #48213.", " Thanks."]
_EN_FILLER = ["the", "this", "my", "our", "their"]
_EN_VERDICT_POS = ["Highly recommend.", "Five stars!", "Love it.", "Would buy again.", "Worth every penny.",
                   "Can't complain.", "10/10", "Happy customer.", "Best purchase this year.", "Recommended!"]
_EN_VERDICT_NEG = ["Do not buy.", "One star.", "Returning it.", "Never again.", "Avoid!", "Total letdown.",
                   "Want my money back.", "Not recommended.", "Regret buying it.", "0/10"]

_TOPICS = {
    "sports": ["match", "goal", "coach", "league", "season", "striker", "tournament", "referee", "championship",
               "injury", "transfer", "stadium", "fans", "penalty", "final", "team", "medal", "olympic", "race",
               "scored"],
    "business": ["market", "shares", "profit", "revenue", "investors", "merger", "quarter", "bank", "earnings",
                 "startup", "inflation", "stocks", "ceo", "acquisition", "growth", "dividend", "tariffs", "sales",
                 "economy", "funding"],
    "technology": ["software", "chip", "smartphone", "startup", "cloud", "ai", "model", "data", "security",
                   "update", "robot", "browser", "network", "processor", "app", "developers", "open source",
                   "battery", "quantum", "privacy"],
    "health": ["patients", "vaccine", "doctors", "hospital", "study", "disease", "treatment", "diet", "virus",
               "clinical", "trial", "sleep", "mental health", "nurses", "drug", "symptoms", "cancer", "exercise",
               "infection", "therapy"],
}
_TOPIC_SHARED = ["report", "new", "said", "announced", "week", "according to", "officials", "record", "plan",
                 "growth", "team", "data", "season", "deal", "crisis", "million"]
_TOPIC_FRAMES = ["{a} {b} after {c} {n}", "{A}: {a} and {b} {s} amid {c}", "Why the {a} matters for {b} and {c}",
                 "{n} {a} {s} as {b} {c} continues", "Live: {a}, {b} and {c} — what we know", "{A} {s} {b}, {c} says",
                 "{a} {b} {c} {n} times"]

_ZH_ITEMS = ["手机", "电脑", "电影", "酒店", "餐厅", "耳机", "这本书", "相机", "软件", "衣服", "游戏", "沙发", "打印机",
             "课程", "航班", "咖啡机", "平板", "外卖", "快递", "空调"]
_ZH_ASPECTS = ["电池", "屏幕", "剧情", "服务", "态度", "价格", "音质", "设计", "物流", "味道", "客服", "质量", "房间",
               "结局", "界面", "包装", "做工", "速度", "环境", "口感"]
_ZH_POS = ["很好", "不错", "满意", "喜欢", "精彩", "好用", "推荐", "划算", "舒服", "流畅", "漂亮", "干净", "值得",
           "实惠",
           "贴心", "耐用", "完美", "惊喜", "快", "好吃"]
_ZH_NEG = ["很差", "失望", "糟糕", "难用", "垃圾", "退货", "后悔", "太贵", "卡顿", "难吃", "脏", "慢", "无聊", "坑",
           "敷衍", "破", "吵", "生气", "假货", "麻烦"]
_ZH_NEGATORS = ["不", "不太", "一点也不", "并不", "没那么"]
_ZH_INTENS = ["", "", "非常", "真的", "特别", "有点", "超级", "挺"]
_ZH_OPEN = ["", "", "说实话", "总的来说", "用了两周", "第一次买", "朋友推荐的", "老实讲"]
_ZH_CLOSE = ["", "。", "！", "！！", "～", "。下次还来", "。就这样吧", "。5分", "😊", "😡", "。详情见https://example.cn"]
_ZH_FILLER = ["这个", "我觉得", "整体", "感觉", "其实"]


def _clause_en(rng, positive: bool) -> str:
    words, other = (_EN_POS, _EN_NEG) if positive else (_EN_NEG, _EN_POS)
    subject = f"{rng.choice(_EN_FILLER)} {rng.choice(_EN_ASPECTS + _EN_ITEMS)}"
    verb = "are" if subject.endswith("s") and not subject.endswith("ss") else "is"
    if rng.random() < 0.15:  # negation of the opposite word: "not bad" reads positive
        return f"{subject} {verb} {rng.choice(_EN_NEGATORS)} {rng.choice(_EN_INTENS)}{rng.choice(other)}"
    return f"{subject} {verb} {rng.choice(_EN_INTENS)}{rng.choice(words)}"


def _typo(rng, text: str, rate: float) -> str:
    chars = list(text)
    for i in range(len(chars) - 1):
        if chars[i].isalpha() and chars[i + 1].isalpha() and rng.random() < rate:
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
    return "".join(chars)


def _review_en(rng, positive: bool) -> str:
    parts = [_clause_en(rng, positive)]
    if rng.random() < 0.25:  # a contrast clause of the other polarity, outweighed by the main one
        parts = [_clause_en(rng, not positive), "but", *parts] if rng.random() < 0.5 else \
            [*parts, "although", _clause_en(rng, not positive)]
    if rng.random() < 0.4:
        parts += ["and", _clause_en(rng, positive)]
    text = rng.choice(_EN_OPEN) + " ".join(parts) + rng.choice(_EN_CLOSE)
    if rng.random() < 0.5:
        text += " " + str(rng.choice(_EN_VERDICT_POS if positive else _EN_VERDICT_NEG))
    text = text[0].upper() + text[1:]
    if rng.random() < 0.1:
        text = text.upper()
    return _typo(rng, text, 0.01)


def _news_en(rng, topic: str) -> str:
    own = _TOPICS[topic]
    others = [w for t, ws in _TOPICS.items() if t != topic for w in ws]

    def word():
        r = rng.random()
        return str(rng.choice(own if r < 0.6 else _TOPIC_SHARED if r < 0.85 else others))

    frame = str(rng.choice(_TOPIC_FRAMES))
    a, b, c = word(), word(), word()
    text = frame.format(a=a, A=a.capitalize(), b=b, c=c, s=rng.choice(["rises", "falls", "surges", "stalls"]),
                        n=int(rng.integers(2, 2000)))
    if rng.random() < 0.5:
        closing = rng.choice(["today", "again", ""])
        text += f". {str(rng.choice(_TOPIC_SHARED)).capitalize()} {word()} {word()} {closing}"
    return _typo(rng, text, 0.01)


def _clause_zh(rng, positive: bool) -> str:
    subject = str(rng.choice(_ZH_ASPECTS + _ZH_ITEMS))
    if rng.random() < 0.15:  # negation: "不差" (not bad) reads positive, "不满意" (not satisfied) negative
        return subject + str(rng.choice(_ZH_NEGATORS)) + ("差" if positive else str(rng.choice(_ZH_POS)))
    return subject + str(rng.choice(_ZH_INTENS)) + str(rng.choice(_ZH_POS if positive else _ZH_NEG))


def _review_zh(rng, positive: bool) -> str:
    parts = [str(rng.choice(_ZH_FILLER)) + _clause_zh(rng, positive)]
    if rng.random() < 0.25:
        parts = [_clause_zh(rng, not positive), "但是", *parts]
    if rng.random() < 0.4:
        parts += ["，而且", _clause_zh(rng, positive)]
    return str(rng.choice(_ZH_OPEN)) + "".join(parts) + str(rng.choice(_ZH_CLOSE))


def make_text_classification(n_samples: int = 600, *, task: str = "sentiment", language: str = "en",
                             label_noise: float = 0.03, random_state=0):
    """A generated text-classification corpus as a DataFrame with columns ``text`` and ``label``.

    ``task="sentiment"``: reviews labelled ``positive`` or ``negative`` (English, or Chinese with
    ``language="zh"``: no spaces between words). ``task="topic"``: English news snippets labelled ``sports``,
    ``business``, ``technology`` or ``health``. Classes are balanced; ``label_noise`` of the labels are then
    replaced by another class at random.

    >>> frame = make_text_classification(4, random_state=1)
    >>> list(frame.columns), sorted(set(frame["label"]))
    (['text', 'label'], ['negative', 'positive'])
    >>> make_text_classification(2, language="zh")["text"].str.contains(" ").any()
    np.False_
    """
    import pandas as pd

    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise InputValueError(f"n_samples must be a positive int, but got {n_samples!r}.")
    if task not in ("sentiment", "topic"):
        raise InputValueError(f"task must be 'sentiment' or 'topic', but got {task!r}.")
    if language not in ("en", "zh") or (task == "topic" and language != "en"):
        raise InputValueError(f"language must be 'en' (both tasks) or 'zh' (sentiment), but got {language!r} for "
                              f"task {task!r}.")
    if not 0 <= label_noise < 0.5:
        raise InputValueError(f"label_noise must be in [0, 0.5), but got {label_noise!r}.")
    rng = np.random.default_rng(random_state)
    classes = ["negative", "positive"] if task == "sentiment" else sorted(_TOPICS)
    labels = np.array([classes[i % len(classes)] for i in range(n_samples)], dtype=object)
    rng.shuffle(labels)
    if task == "topic":
        texts = [_news_en(rng, label) for label in labels]
    else:
        review = _review_zh if language == "zh" else _review_en
        texts = [review(rng, label == "positive") for label in labels]
    flip = rng.random(n_samples) < label_noise
    for i in np.flatnonzero(flip):
        labels[i] = rng.choice([c for c in classes if c != labels[i]])
    return pd.DataFrame({"text": texts, "label": labels})
