"""Labeling configurations: ready templates and validation of custom Label Studio XML.

Label Studio validates a config only when a project is created, with an error
far from where the user typed it. We check the structure first and say what
is wrong: well-formed XML, a ``<View>`` root, at least one data object
(``Image``, ``Text``, ...) with a ``name`` and a ``value="$field"``, and every
control tag (``Choices``, ``Labels``, ...) pointing at an existing object.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from xml.etree import ElementTree
from xml.sax.saxutils import quoteattr

from ..pfs.errors import InvalidArgument

OBJECT_TAGS = {"Image", "Text", "HyperText", "Audio", "Video", "TimeSeries", "Paragraphs", "Table", "Pdf"}
CONTROL_TAGS = {
    "Choices", "Labels", "RectangleLabels", "PolygonLabels", "KeyPointLabels", "BrushLabels",
    "EllipseLabels", "TextArea", "Rating", "Number", "DateTime", "Taxonomy", "Pairwise", "Relations",
    "Rectangle", "Polygon", "KeyPoint", "Brush", "Ellipse", "ParagraphLabels", "TimeSeriesLabels",
    "VideoRectangle", "HyperTextLabels",
}
#: data files each template labels, for building tasks from a mount
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".svg")
TEXT_EXTENSIONS = (".txt", ".md", ".csv", ".json", ".html")


@dataclass(frozen=True)
class Template:
    name: str
    title: str
    data_key: str  # the task data field the object tag reads ("image", "text")
    extensions: tuple[str, ...]
    needs_labels: bool

    def render(self, labels: list[str]) -> str:
        if self.needs_labels and not labels:
            raise InvalidArgument(f"template {self.name!r} needs at least one label", template=self.name)
        for label in labels:
            if not isinstance(label, str) or not label.strip() or len(label) > 200:
                raise InvalidArgument("labels must be non-empty strings of at most 200 characters", label=label)
        if len(set(labels)) != len(labels):
            raise InvalidArgument("labels must be distinct", labels=labels)
        return _RENDER[self.name](labels)


def _options(tag: str, labels: list[str]) -> str:
    return "".join(f"\n    <{tag} value={quoteattr(label)}/>" for label in labels)


_RENDER = {
    "image-classification": lambda labels: (
        '<View>\n  <Image name="image" value="$image"/>\n'
        f'  <Choices name="choice" toName="image" choice="single-radio">{_options("Choice", labels)}\n  </Choices>\n</View>\n'
    ),
    "bounding-boxes": lambda labels: (
        '<View>\n  <Image name="image" value="$image"/>\n'
        f'  <RectangleLabels name="label" toName="image">{_options("Label", labels)}\n  </RectangleLabels>\n</View>\n'
    ),
    "text-classification": lambda labels: (
        '<View>\n  <Text name="text" value="$text"/>\n'
        f'  <Choices name="choice" toName="text" choice="single-radio">{_options("Choice", labels)}\n  </Choices>\n</View>\n'
    ),
    "ner": lambda labels: (
        '<View>\n  <Labels name="label" toName="text">'
        f'{_options("Label", labels)}\n  </Labels>\n  <Text name="text" value="$text"/>\n</View>\n'
    ),
}

TEMPLATES = {
    t.name: t
    for t in (
        Template("image-classification", "Image classification", "image", IMAGE_EXTENSIONS, True),
        Template("bounding-boxes", "Bounding boxes", "image", IMAGE_EXTENSIONS, True),
        Template("text-classification", "Text classification", "text", TEXT_EXTENSIONS, True),
        Template("ner", "Named entities", "text", TEXT_EXTENSIONS, True),
    )
}


@dataclass(frozen=True)
class LabelConfig:
    xml: str
    data_key: str  # the $field tasks must provide
    object_tag: str  # Image, Text, ...


def validate_config(xml: object) -> LabelConfig:
    """Check a Label Studio labeling config; raise InvalidArgument saying what is wrong."""
    if not isinstance(xml, str) or not xml.strip():
        raise InvalidArgument("the labeling config must be non-empty Label Studio XML")
    if len(xml) > 200_000:
        raise InvalidArgument("the labeling config is larger than 200 kB")
    if re.search(r"<!(DOCTYPE|ENTITY)", xml, re.IGNORECASE):
        raise InvalidArgument("the labeling config must not declare a DOCTYPE or entities")
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as exc:
        line, column = exc.position
        raise InvalidArgument(f"the labeling config is not well-formed XML: {exc} (line {line}, column {column})",
                              line=line, column=column) from None
    if root.tag != "View":
        raise InvalidArgument(f"the labeling config must start with <View>, not <{root.tag}>")
    objects = {}
    for element in root.iter():
        if element.tag in OBJECT_TAGS:
            name, value = element.get("name"), element.get("value", "")
            if not name:
                raise InvalidArgument(f"<{element.tag}> needs a name attribute")
            if not re.fullmatch(r"\$[A-Za-z_][A-Za-z0-9_]*", value):
                raise InvalidArgument(f'<{element.tag} name="{name}"> needs value="$field" naming a task field')
            objects[name] = element
    if not objects:
        raise InvalidArgument("the labeling config has no data object such as <Image> or <Text>")
    controls = [e for e in root.iter() if e.tag in CONTROL_TAGS]
    if not controls:
        raise InvalidArgument("the labeling config has no control such as <Choices> or <Labels>")
    for control in controls:
        if control.tag == "Relations":
            continue
        if not control.get("name"):
            raise InvalidArgument(f"<{control.tag}> needs a name attribute")
        for target in (control.get("toName") or "").split(","):
            if target not in objects:
                raise InvalidArgument(
                    f'<{control.tag} name="{control.get("name")}"> points at toName="{target}", '
                    f"but the config has no object named so (objects: {', '.join(sorted(objects))})"
                )
    first = next(iter(objects.values()))
    return LabelConfig(xml=xml, data_key=first.get("value")[1:], object_tag=first.tag)


def config_from_request(template: str | None, labels: list[str] | None, xml: str | None) -> LabelConfig:
    """A config from either a template name + labels or custom XML (exactly one of them)."""
    if (template is None) == (xml is None):
        raise InvalidArgument("give either a template with labels or a custom labeling config (XML)")
    if xml is not None:
        return validate_config(xml)
    if template not in TEMPLATES:
        raise InvalidArgument(f"unknown template {template!r}; choose one of {', '.join(TEMPLATES)}",
                              template=template)
    return validate_config(TEMPLATES[template].render(list(labels or [])))
