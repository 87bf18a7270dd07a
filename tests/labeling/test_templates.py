import pytest

from jupyterlab_pachls.labeling.templates import TEMPLATES, config_from_request, validate_config
from jupyterlab_pachls.pfs import InvalidArgument


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_template_renders_a_valid_config(name):
    config = config_from_request(name, ["cat", "dog & fox", 'say "hi"'], None)
    assert config.data_key == TEMPLATES[name].data_key
    assert 'value="dog &amp; fox"' in config.xml


def test_custom_xml_is_accepted():
    xml = '<View><Text name="t" value="$review"/><Choices name="s" toName="t"><Choice value="+"/></Choices></View>'
    config = config_from_request(None, None, xml)
    assert (config.data_key, config.object_tag) == ("review", "Text")


@pytest.mark.parametrize(
    "xml, words",
    [
        ("<View><Image", "not well-formed XML"),
        ('<Panel><Image name="i" value="$image"/></Panel>', "must start with <View>"),
        ('<View><Choices name="c" toName="i"/></View>', "no data object"),
        ('<View><Image name="i" value="$image"/></View>', "no control"),
        ('<View><Image name="i" value="image"/><Choices name="c" toName="i"/></View>', 'value="$field"'),
        ('<View><Image name="i" value="$image"/><Choices name="c" toName="x"/></View>', 'toName="x"'),
        ('<!DOCTYPE x [<!ENTITY a "b">]><View/>', "DOCTYPE"),
        ("", "non-empty"),
    ],
)
def test_bad_configs_say_what_is_wrong(xml, words):
    with pytest.raises(InvalidArgument) as info:
        validate_config(xml)
    assert words in info.value.message


@pytest.mark.parametrize(
    "template, classes, xml, words",
    [
        ("image-classification", [], None, "at least one label"),
        ("image-classification", ["a", "a"], None, "distinct"),
        ("nope", ["a"], None, "unknown template"),
        (None, None, None, "either a template"),
        ("ner", ["a"], "<View/>", "either a template"),
    ],
)
def test_bad_requests(template, classes, xml, words):
    with pytest.raises(InvalidArgument, match=words):
        config_from_request(template, classes, xml)
