"""The checks in Spanish, as the Spanish release of the assignments shows them: every typical mistake of
test_checks.py reaches the Spanish version of its hint, the passed lines are Spanish, English is untouched
by the switch, and every message template in course_lib/checks.py has a Spanish entry with the same
placeholders (so no student can meet a MissingTranslation)."""

from __future__ import annotations

import ast
import string
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import test_checks as english
import torch.nn.functional as F

from course_lib import PROJECT_ROOT, checks, conv, models, regimes
from course_lib.i18n import SPANISH

# Each English hint that test_checks.py looks for, and the Spanish text the same mistake must show.
HINTS = {
    "check the padding": "revisa el relleno (padding)",
    "2 * padding": "el relleno (padding) se agrega a ambos lados: 2 * padding",
    "count the first window too (+ 1)": "cuenta también la primera ventana (+ 1)",
    "check the stride": "revisa el paso (stride)",
    "round down (floor)": "redondea hacia abajo (floor)",
    "expected an int (use integer division //)": "se esperaba un int (usa la división entera //)",
    "raised ValueError": "lanzó ValueError",
    "height and width are swapped": "el alto y el ancho están intercambiados",
    "do not flip the kernel": "no inviertas el núcleo (kernel)",
    "add the bias": "suma el sesgo (bias) de cada canal de salida",
    "called torch's conv2d": "llamó a conv2d de torch: calcúlalo tú, ese es el ejercicio",
    "F.pad(x, (1, 0, 1, 0)) pads the left and top only": "F.pad(x, (1, 0, 1, 0)) rellena solo a la izquierda y arriba",
    "F.pad(x, (2, 2)) pads the width only": "F.pad(x, (2, 2)) rellena solo el ancho",
    "the input sits in one corner": "la entrada queda en una esquina de la entrada rellenada",
    "the window moves by stride positions": "la ventana avanza stride posiciones",
    "dtype torch.float64": "devolvió dtype torch.float64, se esperaba torch.float32",
    "check which input window each output value sums over": "revisa sobre qué ventana de la entrada suma cada valor",
    "raised TypeError": "lanzó TypeError",
    "right numbers in the wrong order": "los números correctos en el orden equivocado",
    "column l must hold the input window of output position l": "la columna l debe contener la ventana de la entrada",
    "rows are kernel entries, columns are windows: transpose": "las filas son entradas del núcleo y las columnas son "
    "ventanas: transpón",
    "F.pad(x, (0, 1, 0, 1)) pads the right and bottom only": "F.pad(x, (0, 1, 0, 1)) rellena solo a la derecha y abajo",
    "called torch's unfold": "llamó a unfold de torch",
    "the shortcut needs a projection": "el atajo necesita una proyección",
    "the projection's 1x1 convolution has stride 1, expected 2: the projection takes the block's stride": (
        "la convolución 1x1 de la proyección tiene stride 1, se esperaba 2: la proyección lleva el stride del bloque"
    ),
    "conv1 has stride 1, expected 2: the first convolution takes the block's stride": (
        "conv1 tiene stride 1, se esperaba 2: la primera convolución lleva el stride del bloque"
    ),
    "conv2 has stride 2, expected 1: the second convolution keeps the size": (
        "conv2 tiene stride 2, se esperaba 1: la segunda convolución conserva el tamaño"
    ),
    "the block keeps the shape, so the shortcut is the identity: downsample = None": (
        "el bloque conserva la forma, así que el atajo es la identidad: downsample = None"
    ),
    "conv1 has a bias: a convolution followed by BatchNorm has none (bias=False)": (
        "conv1 tiene sesgo (bias): una convolución seguida de BatchNorm no lo lleva (bias=False)"
    ),
    "parameter names differ from the reference": "los nombres de los parámetros difieren de los de la referencia",
    "add the shortcut (x, or its projection) before the final ReLU": "suma el atajo (x, o su proyección) antes de "
    "la ReLU final",
    "apply the final ReLU after adding the shortcut": "aplica la ReLU final después de sumar el atajo",
    "add the shortcut before the final ReLU, not after it": "suma el atajo antes de la ReLU final, no después",
    "the order is conv1, bn1, relu, conv2, bn2, + shortcut, relu": "el orden es conv1, bn1, relu, conv2, bn2, + atajo, "
    "relu",
    "the second block strides too (stride 2), so the stage downsamples twice": (
        "el segundo bloque también usa stride (stride 2), así que la etapa reduce la resolución dos veces"
    ),
    "the first block has stride 1, expected 2": "el primer bloque tiene stride 1, se esperaba 2",
    "the second block maps 64 to 128 channels, expected 128 to 128": (
        "el segundo bloque pasa de 64 a 128 canales, se esperaba de 128 a 128"
    ),
    "an nn.Sequential of two blocks": "una etapa es un nn.Sequential de dos bloques",
    "64 too many: the stem convolution has a bias": "64 de más: la convolución del stem tiene sesgo (bias)",
    "345,856 too many: the second block of layer2, layer3 and layer4": (
        "345\u202f856 de más: el segundo bloque de layer2, layer3 y layer4"
    ),
    "too few: one block per stage: each stage has two": "de menos: un bloque por etapa: cada etapa tiene dos",
    "layer1 receives (2, 64, 32, 32), expected (2, 64, 16, 16) (the max pooling is": (
        "layer1 recibe (2, 64, 32, 32), se esperaba (2, 64, 16, 16) (falta el max pooling)"
    ),
    "the stem is conv1 (7x7, stride 2, padding 3), bn1": "el stem es conv1 (7x7, stride 2, padding 3), bn1",
    "forward never runs layer3": "forward nunca ejecuta layer3",
    "pool with avgpool (adaptive average pooling to 1x1)": "haz el pooling con avgpool (pooling promedio adaptativo",
    "fc's output is changed afterwards": "la salida de fc se modifica después",
    "state_dict does not load": "el state_dict de resnet18 de torchvision no se carga",
    "requires_grad=False does not stop BatchNorm": "requires_grad=False no impide que BatchNorm actualice",
    "were in eval mode, but model.train() switches every layer back to train mode": (
        "estaban en modo eval, pero model.train() vuelve a poner todas las capas en modo train"
    ),
    "the head is frozen too": "la cabeza también está congelada",
    "(bn1.weight still trains)": "(bn1.weight todavía se entrena)",
    "write it yourself": "escríbelo tú, ese es el ejercicio",
    "the model's methods ['train'] were replaced": "se reemplazaron los métodos ['train'] del modelo",
    "the backbone group has lr 0.01, expected 0.001 (lr * BACKBONE_LR_FACTOR under finetune)": (
        "el grupo backbone tiene lr 0.01, se esperaba 0.001 (lr * BACKBONE_LR_FACTOR con finetune)"
    ),
    "frozen parameters (requires_grad False): leave them out": "parámetros congelados (requires_grad False): "
    "déjalos afuera",
    "a parameter is in two groups": "un parámetro está en dos grupos",
    "some trainable parameters are in no group": "algunos parámetros entrenables no están en ningún grupo",
    "expected ['backbone', 'head']": "se esperaba ['backbone', 'head']",
    "must be a list of dicts": "debe ser una lista de dicts",
    "BatchNorm running statistics": "cambió estadísticas móviles de BatchNorm",
    "freeze everything but the head fc": "congela todo salvo la cabeza fc",
    "does not hold the pretrained weights": "no tiene los pesos preentrenados",
    "the head has shape (10, 512)": "la cabeza tiene forma (10, 512)",
    "must return (model, param_groups)": "debe devolver (model, param_groups)",
    "keep the History that train.fit returned": "guarda el History que devolvió train.fit",
    "has 1 epochs, expected 2": "tiene 1 épocas, se esperaban 2",
    "must be positive and increasing": "debe ser positivo y creciente",
    "must be fractions between 0 and 1": "deben ser fracciones entre 0 y 1",
}


@pytest.fixture
def spanish() -> Iterator[None]:
    """The checks speak Spanish for one test, as after the Spanish release's language cell."""
    checks.set_language("es")
    try:
        yield
    finally:
        checks.set_language("en")


def hint(english_hint: str) -> str:
    return HINTS[english_hint]


def rows(table: list[tuple]) -> list[Any]:
    return [pytest.param(*row, id=row[0]) for row in table]


@pytest.mark.usefixtures("spanish")
@pytest.mark.parametrize(("mistake", "size", "english_hint"), rows(english.SIZE_MISTAKES))
def test_output_size_mistakes_reach_their_spanish_hint(mistake: str, size: Callable, english_hint: str) -> None:
    assert hint(english_hint) in english.failure(checks.check_conv_output_size, size, seed=0)


@pytest.mark.usefixtures("spanish")
@pytest.mark.parametrize(("mistake", "settings", "conv2d", "english_hint"), rows(english.CONV2D_MISTAKES))
def test_conv2d_mistakes_reach_their_spanish_hint(
    mistake: str, settings: dict, conv2d: Callable, english_hint: str
) -> None:
    assert hint(english_hint) in english.failure(checks.check_conv2d, conv2d, seed=0, **settings)


@pytest.mark.usefixtures("spanish")
@pytest.mark.parametrize(("mistake", "settings", "im2col", "english_hint"), rows(english.IM2COL_MISTAKES))
def test_im2col_mistakes_reach_their_spanish_hint(
    mistake: str, settings: dict, im2col: Callable, english_hint: str
) -> None:
    assert hint(english_hint) in english.failure(checks.check_im2col, im2col, seed=0, **settings)


@pytest.mark.usefixtures("spanish")
@pytest.mark.parametrize(("mistake", "block", "english_hint"), rows(english.BLOCK_SHAPE_MISTAKES))
def test_block_shape_mistakes_reach_their_spanish_hint(mistake: str, block: Callable, english_hint: str) -> None:
    assert hint(english_hint) in english.failure(checks.check_block_shapes, block, seed=0)


@pytest.mark.usefixtures("spanish")
@pytest.mark.parametrize(("mistake", "block", "english_hint"), rows(english.BLOCK_MISTAKES))
def test_block_mistakes_reach_their_spanish_hint(mistake: str, block: Callable, english_hint: str) -> None:
    assert hint(english_hint) in english.failure(checks.check_basic_block, block, seed=0)


@pytest.mark.usefixtures("spanish")
@pytest.mark.parametrize(("mistake", "make_stage", "english_hint"), rows(english.STAGE_MISTAKES))
def test_stage_mistakes_reach_their_spanish_hint(mistake: str, make_stage: Callable, english_hint: str) -> None:
    assert hint(english_hint) in english.failure(checks.check_make_stage, make_stage, 64, 128, 2, seed=0)


@pytest.mark.usefixtures("spanish")
@pytest.mark.parametrize(("mistake", "network", "english_hint"), rows(english.COUNT_MISTAKES))
def test_parameter_count_mistakes_reach_their_spanish_hint(mistake: str, network: type, english_hint: str) -> None:
    assert hint(english_hint) in english.failure(checks.check_parameter_count, network)


@pytest.mark.usefixtures("spanish")
@pytest.mark.parametrize(("mistake", "network", "english_hint"), rows(english.RESNET_MISTAKES))
def test_resnet_mistakes_reach_their_spanish_hint(mistake: str, network: type, english_hint: str) -> None:
    assert hint(english_hint) in english.failure(checks.check_resnet18, network, seed=0)


@pytest.mark.usefixtures("spanish")
@pytest.mark.parametrize(("mistake", "freeze", "english_hint"), rows(english.FREEZE_MISTAKES))
def test_freeze_mistakes_reach_their_spanish_hint(mistake: str, freeze: Callable, english_hint: str) -> None:
    assert hint(english_hint) in english.failure(checks.check_freeze_backbone, freeze, seed=0)


@pytest.mark.usefixtures("spanish")
@pytest.mark.parametrize(("mistake", "param_groups", "english_hint"), rows(english.GROUP_MISTAKES))
def test_param_group_mistakes_reach_their_spanish_hint(mistake: str, param_groups: Callable, english_hint: str) -> None:
    assert hint(english_hint) in english.failure(checks.check_param_groups, param_groups, seed=0)


@pytest.mark.usefixtures("spanish")
@pytest.mark.parametrize(("mistake", "regime", "prepare_model", "english_hint"), rows(english.PREPARE_MISTAKES))
def test_prepare_model_mistakes_reach_their_spanish_hint(
    mistake: str, regime: str, prepare_model: Callable, english_hint: str
) -> None:
    assert hint(english_hint) in english.failure(checks.check_prepare_model, prepare_model, regimes=(regime,), seed=0)


@pytest.mark.usefixtures("spanish")
@pytest.mark.parametrize(("mistake", "value", "english_hint"), rows(english.HISTORY_MISTAKES))
def test_history_mistakes_reach_their_spanish_hint(mistake: str, value: Any, english_hint: str) -> None:
    assert hint(english_hint) in english.failure(checks.check_history, value, epochs=2)


@pytest.mark.usefixtures("spanish")
def test_the_other_hints_in_spanish() -> None:
    """The mistakes tried outside test_checks.py's tables: conv2d_im2col's, time_to_target's, the zeroed block's."""
    for _, line, english_hint in english.CONV2D_IM2COL_MISTAKES:
        ns = english.notebook_namespace("01-convolution", "conv_output_size", "im2col")
        exec(
            "def conv2d_im2col(x, weight, bias=None, stride=1, padding=0):\n"
            f"    {line}\n"
            "    out_h = conv_output_size(x.shape[2], weight.shape[2], stride, padding)\n"
            "    out_w = conv_output_size(x.shape[3], weight.shape[3], stride, padding)\n"
            "    return out.reshape(x.shape[0], weight.shape[0], out_h, out_w)\n",
            ns,
        )
        assert hint(english_hint) in english.failure(checks.check_conv2d_im2col, ns["conv2d_im2col"], seed=0)
    last_epoch = lambda accuracy, seconds, target: seconds[-1] if max(accuracy) >= target else None
    assert "el tiempo de la primera época que alcanza o supera el objetivo" in english.failure(
        checks.check_time_to_target, last_epoch, seed=0
    )
    zeroed = {
        english.NoFinalRelu: "devuelve F(x) + x: falta la ReLU final",
        english.ReluBeforeAdd: "la ReLU está antes de la suma (relu(F(x)) + x)",
        english.NoShortcut: "falta el atajo: suma x a la rama residual",
    }
    for block, spanish_hint in zeroed.items():
        message = english.failure(checks.check_zeroed_residual, block, seed=0)
        assert message.startswith("BasicBlock(8, 8) con la rama residual en cero") and spanish_hint in message


@pytest.mark.usefixtures("spanish")
def test_passed_lines_in_spanish(capsys: pytest.CaptureFixture) -> None:
    checks.check_conv_output_size(conv.conv_output_size, seed=0)
    checks.check_conv2d(english.right, stride=2, padding=1, seed=0)
    checks.check_basic_block(models.BasicBlock, seed=0)
    checks.check_param_groups(regimes.param_groups, seed=0)
    assert capsys.readouterr().out.splitlines() == [
        "correcto: conv_output_size coincide con PyTorch en 30 casos aleatorios",
        "correcto: conv2d_naive coincide con torch.nn.functional.conv2d en 3 entradas aleatorias "
        "(stride=2, padding=1, núcleo de 3x3, con sesgo (bias))",
        "correcto: BasicBlock coincide con el bloque de referencia, en modo eval y en modo train, para "
        "(in, out, stride) = ((8, 8, 1), (8, 16, 2), (8, 16, 1), (8, 8, 2))",
        "correcto: param_groups coincide con course_lib.regimes.param_groups para fresh, finetune, "
        "feature_extraction (lr=0.01)",
    ]


def test_the_language_is_the_kernels_and_english_is_the_default(capsys: pytest.CaptureFixture) -> None:
    """set_language switches every later message, and back; an unknown language is refused."""
    not_written = next(row[2] for row in english.CONV2D_MISTAKES if row[0] == "not written yet")
    checks.check_conv_output_size(conv.conv_output_size, seed=0)
    checks.set_language("es")
    try:
        checks.check_conv_output_size(conv.conv_output_size, seed=0)
        spanish_failure = english.failure(checks.check_conv2d, not_written, seed=0)
    finally:
        checks.set_language("en")
    english_failure = english.failure(checks.check_conv2d, not_written, seed=0)
    assert capsys.readouterr().out.splitlines() == [
        "passed: conv_output_size agrees with PyTorch on 30 random cases",
        "correcto: conv_output_size coincide con PyTorch en 30 casos aleatorios",
    ]
    assert " lanzó TypeError: " in spanish_failure and " raised TypeError: " in english_failure
    with pytest.raises(Exception, match="Unknown language 'fr'; choose from en, es"):
        checks.set_language("fr")
    assert F.conv2d.__name__ == "conv2d"  # the forbidden shortcuts were put back after the failures


# ---------------------------------------------------------------- every template has its Spanish

TRANSLATING = {"_t", "_fail", "_passed", "N_"}  # checks.py's functions whose first argument is an English template


def templates() -> list[str]:
    """Every English template of course_lib/checks.py: the literal first argument of each translating call."""
    tree = ast.parse((PROJECT_ROOT / "course_lib" / "checks.py").read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in TRANSLATING:
            argument = node.args[0]
            assert not isinstance(argument, ast.JoinedStr), f"line {node.lineno}: a template is never an f-string"
            if isinstance(argument, ast.Constant):
                found.append(argument.value)
            else:  # a constant marked with N_ elsewhere, or a hint already translated
                assert node.func.id == "_t" and isinstance(argument, ast.Name | ast.Subscript | ast.Tuple | ast.Call), (
                    f"line {node.lineno}: {node.func.id}() takes a literal template"
                )
    return sorted(set(found))


def fields(template: str) -> list[tuple[str, str, str | None]]:
    return sorted((name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(template) if name)


def test_every_template_has_spanish_with_the_same_placeholders() -> None:
    found = templates()
    assert len(found) > 150
    missing = [template for template in found if template not in SPANISH]
    assert not missing, f"no Spanish in course_lib/i18n.py (block # course_lib.checks) for {missing}"
    changed = [t for t in found if fields(SPANISH[t]) != fields(t)]
    assert not changed, f"placeholders differ in Spanish for {changed}"
