"""The words on the course's figures and tables, in English and in Spanish.

The book is published in two editions (English and Spanish) from one execution of its code:
each figure is computed once and drawn in both languages. Everything a figure or a table
shows in words goes through :func:`translate` (sentences, titles, axis labels, legends) or
:func:`class_name` (the dataset's class names), so the Spanish text lives here, in one place,
and nothing else in the project holds a copy of it.

The English text is the key: ``translate("Time to {target:.0%} validation accuracy", "es",
target=0.9)``. A message without a Spanish entry raises :class:`MissingTranslation` rather
than showing English in the Spanish edition, so a figure that was never translated stops
the build instead of slipping through. Regime names (``fresh``, ``finetune``,
``feature_extraction``), identifiers and command-line words stay English in both editions.

The assignments' checks (:mod:`course_lib.checks`) give their hints through :func:`translate`
too, in the language their notebook chose; their Spanish is the block ``# course_lib.checks``.
(The assignments' own prose is translated in gettext catalogs, like the book's.)
"""

from __future__ import annotations

from collections.abc import Iterable

from course_lib.errors import CourseError

__all__ = [
    "CLASS_NAMES",
    "LANGUAGES",
    "SPANISH",
    "MissingTranslation",
    "check_language",
    "class_name",
    "class_names",
    "number",
    "translate",
]

# English first: it is the language of the sources, of the code and of every default.
LANGUAGES = ("en", "es")

# English message (a str.format template) -> its Spanish translation, grouped by where the
# message is used. Placeholders keep their names and format specs (a test checks it).
SPANISH: dict[str, str] = {
    # course_lib.plots.plot_curves
    "Accuracy": "Exactitud",
    "Cross-entropy loss": "Entropía cruzada",
    " (mean ± std of {seeds} seeds)": " (media ± desvío, {seeds} semillas)",
    "epoch": "época",
    "accuracy (%)": "exactitud (%)",
    "loss": "pérdida",
    "Validation accuracy against training time": "Exactitud de validación según el tiempo",
    "cumulative training seconds": "segundos de entrenamiento acumulados",
    "validation accuracy (%)": "exactitud de validación (%)",
    "target {target:.0%}": "objetivo {target:.0%}",
    "validation": "validación",
    "train (augmented batches)": "entrenamiento (lotes aumentados)",
    # course_lib.plots.plot_time_to_target
    "  (epoch {epoch:.3g})": "  (época {epoch:.3g})",
    ", reached in {reached} of {runs} seeds": ", alcanzado en {reached} de {runs} semillas",
    "not reached in {seconds:.0f} s (best {best:.1%})": "no alcanzado en {seconds:.0f} s (mejor: {best:.1%})",
    "Time to {target:.0%} validation accuracy": "Tiempo hasta {target:.0%} de exactitud de validación",
    "reached": "alcanzado",
    "not reached: whole run": "no alcanzado: la ejecución completa",
    # course_lib.plots.plot_predictions
    "{mark} predicted: {name}": "{mark} predicho: {name}",
    "true: {name}": "real: {name}",
    "Test photos: each regime's prediction (green ✓ right, red ✗ wrong)": (
        "Fotos de prueba: la predicción de cada régimen (verde ✓ acierto, rojo ✗ error)"
    ),
    # course_lib.plots.plot_confusion
    "{regime}: {accuracy:.1%} right": "{regime}: {accuracy:.1%} de aciertos",
    "predicted": "predicha",
    "true": "real",
    "share of the true class": "proporción de la clase real",
    # course_lib.plots.plot_probes
    "{features} features": "{features} características",
    "always the largest class: {accuracy:.1%}": "siempre la clase mayoritaria: {accuracy:.1%}",
    "test accuracy (%)": "exactitud de prueba (%)",
    "A linear head on the pooled output of each stage": "Una capa lineal sobre la salida promediada de cada etapa",
    # course_lib.checks: the hints and "passed" lines of the assignments' checks (English template -> Spanish)
    " (lr * BACKBONE_LR_FACTOR under finetune)": " (lr * BACKBONE_LR_FACTOR con finetune)",
    " (the max pooling is missing)": " (falta el max pooling)",
    " (use integer division //)": " (usa la división entera //)",
    " (with the course's {names})": " (con {names} del curso)",
    " and ": " y ",
    ", with bias": ", con sesgo (bias)",
    ", without bias": ", sin sesgo (bias)",
    "a {type}": "un {type}",
    "add the bias of each output channel": "suma el sesgo (bias) de cada canal de salida",
    "add the shortcut (x, or its projection) before the final ReLU.": (
        "suma el atajo (x, o su proyección) antes de la ReLU final."
    ),
    "add the shortcut before the final ReLU, not after it.": "suma el atajo antes de la ReLU final, no después.",
    "after {call} and model.train(), a forward pass changed {key}: requires_grad=False does not stop BatchNorm from "
    "updating its running statistics in train mode; the frozen backbone must stay in eval mode, also after "
    "model.train() (ResNet18.train keeps it there while model.backbone_frozen is True).": (
        "después de {call} y model.train(), una pasada forward cambió {key}: requires_grad=False no impide que "
        "BatchNorm actualice sus estadísticas móviles (running statistics) en modo train; la red base congelada debe "
        "quedar en modo eval, también después de model.train() (ResNet18.train la mantiene así mientras "
        "model.backbone_frozen sea True)."
    ),
    "after {call} and model.train(), the head fc is in eval mode: only the backbone stays in eval mode.": (
        "después de {call} y model.train(), la cabeza fc está en modo eval: solo la red base queda en modo eval."
    ),
    "after {call} the backbone's BatchNorm layers were in eval mode, but model.train() switches every layer back to "
    "train mode, and then a forward pass changed {key}: the frozen backbone must stay in eval mode also after "
    "model.train() (ResNet18.train keeps it there while model.backbone_frozen is True).": (
        "después de {call} las capas BatchNorm de la red base estaban en modo eval, pero model.train() vuelve a poner "
        "todas las capas en modo train, y luego una pasada forward cambió {key}: la red base congelada debe quedar en "
        "modo eval también después de model.train() (ResNet18.train la mantiene así mientras model.backbone_frozen sea "
        "True)."
    ),
    "an nn.Sequential of {count}": "un nn.Sequential de {count}",
    "apply the final ReLU after adding the shortcut.": "aplica la ReLU final después de sumar el atajo.",
    "BasicBlock matches the reference block, eval and train mode, for (in, out, stride) = {cases}": (
        "BasicBlock coincide con el bloque de referencia, en modo eval y en modo train, para (in, out, stride) = "
        "{cases}"
    ),
    "BasicBlock output shapes and shortcuts for (in, out, stride) = {cases}": (
        "BasicBlock: formas de salida y atajos correctos para (in, out, stride) = {cases}"
    ),
    "BasicBlock({channels}, {channels}) with a zeroed residual branch is relu(x)": (
        "BasicBlock({channels}, {channels}) con la rama residual en cero es relu(x)"
    ),
    "bottom": "abajo",
    "check the padding": "revisa el relleno (padding)",
    "check the padding: F.pad(x, {pad}) {done}; padding={padding} puts {zeros} on each of the four sides, F.pad(x, "
    "(padding, padding, padding, padding))": (
        "revisa el relleno (padding): F.pad(x, {pad}) {done}; padding={padding} pone {zeros} en cada uno de los cuatro "
        "lados, F.pad(x, (padding, padding, padding, padding))"
    ),
    "check the padding: it adds to both sides of the input": (
        "revisa el relleno (padding): se agrega a ambos lados de la entrada"
    ),
    "check the stride": "revisa el paso (stride)",
    "check the stride: the window moves by stride positions": (
        "revisa el paso (stride): la ventana avanza stride posiciones"
    ),
    "check which input window each output value sums over, and that you sum over all input channels.": (
        "revisa sobre qué ventana de la entrada suma cada valor de salida, y que sumes sobre todos los canales de "
        "entrada."
    ),
    "column l must hold the input window of output position l (row-major over the output)": (
        "la columna l debe contener la ventana de la entrada de la posición de salida l (recorriendo la salida por "
        "filas)"
    ),
    "conv_output_size agrees with PyTorch on {trials} random cases": (
        "conv_output_size coincide con PyTorch en {trials} casos aleatorios"
    ),
    "count the first window too (+ 1)": "cuenta también la primera ventana (+ 1)",
    "do not flip the kernel: conv2d in deep learning is a cross-correlation": (
        "no inviertas el núcleo (kernel): en aprendizaje profundo, conv2d es una correlación cruzada"
    ),
    "downsample is a projection exactly when the shape changes": (
        "downsample es una proyección exactamente cuando cambia la forma"
    ),
    "each column holds the right numbers in the wrong order: list channel by channel, then kernel row by kernel row": (
        "cada columna tiene los números correctos en el orden equivocado: enuméralos canal por canal y, dentro de cada "
        "canal, fila por fila del núcleo"
    ),
    "every convolution has a bias: bias=False in convolutions followed by BatchNorm": (
        "todas las convoluciones tienen sesgo (bias): bias=False en las convoluciones seguidas de BatchNorm"
    ),
    "every parameter trains": "todos los parámetros se entrenan",
    "fc's output is changed afterwards: return fc's output as it is": (
        "la salida de fc se modifica después: devuelve la salida de fc tal cual"
    ),
    "forward never runs {part}: run the stem, layer1 to layer4, the pooling and fc, in that order": (
        "forward nunca ejecuta {part}: ejecuta el stem, de layer1 a layer4, el pooling y fc, en ese orden"
    ),
    "freeze everything but the head fc": "congela todo salvo la cabeza fc",
    "height and width are swapped": "el alto y el ancho están intercambiados",
    "im2col agrees with torch.nn.functional.unfold on {trials} random inputs ({settings}){course}": (
        "im2col coincide con torch.nn.functional.unfold en {trials} entradas aleatorias ({settings}){course}"
    ),
    "im2col: values differ from torch.nn.functional.unfold: {hint}.": (
        "im2col: los valores difieren de los de torch.nn.functional.unfold: {hint}."
    ),
    "it keeps the shape, so it needs none": "conserva la forma, así que no necesita ninguna",
    "it ran with the course's {names}, which take the arguments the assignment gives": (
        "se ejecutó con {names} del curso, que reciben los argumentos que indica la consigna"
    ),
    "it returns F(x) + x: the final ReLU is missing; apply relu after adding the shortcut.": (
        "devuelve F(x) + x: falta la ReLU final; aplica relu después de sumar el atajo."
    ),
    "left": "a la izquierda",
    "name the layers as torchvision does (conv1, bn1, conv2, bn2, downsample).": (
        "nombra las capas como lo hace torchvision (conv1, bn1, conv2, bn2, downsample)."
    ),
    "no projection shortcuts: the first block of layer2, layer3 and layer4 changes the shape": (
        "no hay atajos con proyección: el primer bloque de layer2, layer3 y layer4 cambia la forma"
    ),
    "one block per stage: each stage has two": "un bloque por etapa: cada etapa tiene dos",
    "output = floor((size + 2 * padding - kernel_size) / stride) + 1.": (
        "salida = floor((size + 2 * padding - kernel_size) / stride) + 1."
    ),
    "padding adds to both sides: 2 * padding": "el relleno (padding) se agrega a ambos lados: 2 * padding",
    "pads by other amounts": "rellena con otras cantidades",
    "pads nothing": "no rellena nada",
    "pads the width only (F.pad's amounts start with the last dimension)": (
        "rellena solo el ancho (las cantidades de F.pad empiezan por la última dimensión)"
    ),
    "pads the {sides} only": "rellena solo {sides}",
    "param_groups agrees with course_lib.regimes.param_groups for {regimes} (lr={lr})": (
        "param_groups coincide con course_lib.regimes.param_groups para {regimes} (lr={lr})"
    ),
    "passed: {message}": "correcto: {message}",
    "prepare_model agrees with course_lib.regimes for {regimes}{course}": (
        "prepare_model coincide con course_lib.regimes para {regimes}{course}"
    ),
    "ResNet18(3) on 32x32 images": "ResNet18(3) con imágenes de 32x32",
    "ResNet18({num_classes}) has {count} parameters, expected {expected}: {hint}": (
        "ResNet18({num_classes}) tiene {count} parámetros, se esperaban {expected}: {hint}"
    ),
    "ResNet18({num_classes}) has {expected} parameters, as torchvision's resnet18": (
        "ResNet18({num_classes}) tiene {expected} parámetros, como resnet18 de torchvision"
    ),
    "ResNet18({num_classes}) matches torchvision's resnet18 on {size}x{size} images": (
        "ResNet18({num_classes}) coincide con resnet18 de torchvision en imágenes de {size}x{size}"
    ),
    "ResNet18({num_classes}) output differs from torchvision's resnet18 with the same weights by up to {error:.3g}: "
    "{hint}.": (
        "la salida de ResNet18({num_classes}) difiere de la de resnet18 de torchvision con los mismos pesos hasta en "
        "{error:.3g}: {hint}."
    ),
    "right": "a la derecha",
    "round down (floor): a window that does not fit is dropped": (
        "redondea hacia abajo (floor): una ventana que no entra se descarta"
    ),
    "rows are kernel entries, columns are windows: transpose": (
        "las filas son entradas del núcleo y las columnas son ventanas: transpón"
    ),
    "stride={stride}, padding={padding}, kernel {height}x{width}{with_bias}": (
        "stride={stride}, padding={padding}, núcleo de {height}x{width}{with_bias}"
    ),
    "the block changes the shape ({in_channels} to {out_channels} channels, stride {stride}), so x cannot be added "
    "to the residual branch as it is: the shortcut needs a projection, downsample = nn.Sequential(1x1 convolution "
    "with the block's stride and no bias, BatchNorm)": (
        "el bloque cambia la forma (de {in_channels} a {out_channels} canales, stride {stride}), así que x no puede "
        "sumarse tal cual a la rama residual: el atajo necesita una proyección, downsample = nn.Sequential(convolución "
        "1x1 con el stride del bloque y sin sesgo, BatchNorm)"
    ),
    "the block keeps the shape, so the shortcut is the identity: downsample = None": (
        "el bloque conserva la forma, así que el atajo es la identidad: downsample = None"
    ),
    "the block must output out_channels channels": "el bloque debe producir out_channels canales",
    "the first block": "el primer bloque",
    "the first convolution (and the projection) must use the stride": (
        "la primera convolución (y la proyección) debe usar el stride"
    ),
    "the first convolution takes the block's stride": "la primera convolución lleva el stride del bloque",
    "the frozen model": "el modelo congelado",
    "the identity shortcut must add x itself, unchanged, before the final ReLU.": (
        "el atajo identidad debe sumar el propio x, sin cambios, antes de la ReLU final."
    ),
    "the input sits in one corner of the padded input: padding adds padding zeros before and after it on both axes "
    "(the input starts at row and column padding)": (
        "la entrada queda en una esquina de la entrada rellenada: el relleno agrega padding ceros antes y después de "
        "ella en ambos ejes (la entrada empieza en la fila y la columna padding)"
    ),
    "the model": "el modelo",
    "the module": "el módulo",
    "the order is conv1, bn1, relu, conv2, bn2, + shortcut, relu.": (
        "el orden es conv1, bn1, relu, conv2, bn2, + atajo, relu."
    ),
    "the projection takes the block's stride, so that the shortcut has the residual branch's shape": (
        "la proyección lleva el stride del bloque, para que el atajo tenga la forma de la rama residual"
    ),
    "the projection's 1x1 convolution": "la convolución 1x1 de la proyección",
    "the ReLU comes before the addition (relu(F(x)) + x): add the shortcut first, then apply the final ReLU to the "
    "sum.": (
        "la ReLU está antes de la suma (relu(F(x)) + x): suma primero el atajo y después aplica la ReLU final a la "
        "suma."
    ),
    "the second block": "el segundo bloque",
    "the second block of layer2, layer3 and layer4 has a projection too: only the first block of a stage strides "
    "and changes the channels, the second is BasicBlock(out_channels, out_channels, 1)": (
        "el segundo bloque de layer2, layer3 y layer4 también tiene una proyección: solo el primer bloque de una etapa "
        "usa el stride y cambia los canales; el segundo es BasicBlock(out_channels, out_channels, 1)"
    ),
    "the second block strides too (stride {stride}), so the stage downsamples twice: only the first block of a "
    "stage has the stride; the second is BasicBlock(out_channels, out_channels, 1)": (
        "el segundo bloque también usa stride (stride {stride}), así que la etapa reduce la resolución dos veces: solo "
        "el primer bloque de una etapa tiene el stride; el segundo es BasicBlock(out_channels, out_channels, 1)"
    ),
    "the second convolution keeps the size (stride 1)": "la segunda convolución conserva el tamaño (stride 1)",
    "the shortcut is missing: add x to the residual branch, then apply the final ReLU.": (
        "falta el atajo: suma x a la rama residual y después aplica la ReLU final."
    ),
    "the stem convolution has a bias: bias=False, BatchNorm follows it": (
        "la convolución del stem tiene sesgo (bias): bias=False, ya que la sigue BatchNorm"
    ),
    "the window moves by stride positions: window (i, j) starts at row i * stride, column j * stride": (
        "la ventana avanza stride posiciones: la ventana (i, j) empieza en la fila i * stride, columna j * stride"
    ),
    "time_to_target agrees with History.time_to on {trials} random histories": (
        "time_to_target coincide con History.time_to en {trials} historiales aleatorios"
    ),
    "top": "arriba",
    "torchvision's resnet18 state_dict does not load in strict mode: {error}": (
        "el state_dict de resnet18 de torchvision no se carga en modo estricto: {error}"
    ),
    "torchvision's resnet18 state_dict does not load: missing {missing}, unexpected {unexpected}; name the parts "
    "conv1, bn1, layer1..layer4 (two blocks each) and fc.": (
        "el state_dict de resnet18 de torchvision no se carga: faltan {missing}, sobran {unexpected}; nombra las "
        "partes conv1, bn1, layer1..layer4 (dos bloques cada una) y fc."
    ),
    "x of shape {x}": "x de forma {x}",
    "x of shape {x}, weight of shape {weight}": "x de forma {x}, weight de forma {weight}",
    "{call} built a {type}, expected a torch.nn.Module.": "{call} construyó un {type}, se esperaba un torch.nn.Module.",
    "{call} is two blocks, {in_channels} to {out_channels} channels with stride {stride}, then stride 1": (
        "{call} son dos bloques, de {in_channels} a {out_channels} canales con stride {stride}, y luego stride 1"
    ),
    "{call} must return (model, param_groups), got {type}.": (
        "{call} debe devolver (model, param_groups), devolvió {type}."
    ),
    "{call} raised {error}: {text}{hint}": "{call} lanzó {error}: {text}{hint}",
    "{call} returned a {type}; build a course_lib.models.ResNet18.": (
        "{call} devolvió un {type}; construye un course_lib.models.ResNet18."
    ),
    "{call} returned {result!r} of type {type}, expected an int{hint}.": (
        "{call} devolvió {result!r} de tipo {type}, se esperaba un int{hint}."
    ),
    "{call} returned {result!r}, expected None: the target was never reached.": (
        "{call} devolvió {result!r}, se esperaba None: el objetivo nunca se alcanzó."
    ),
    "{call} returned {result!r}, expected {expected!r}: the time of the first epoch at or above the target.": (
        "{call} devolvió {result!r}, se esperaba {expected!r}: el tiempo de la primera época que alcanza o supera el "
        "objetivo."
    ),
    "{call} returned {result}, expected {expected}: {hint}": "{call} devolvió {result}, se esperaba {expected}: {hint}",
    "{call} returned {what}: a stage is an nn.Sequential of two blocks.": (
        "{call} devolvió {what}: una etapa es un nn.Sequential de dos bloques."
    ),
    "{call}: a parameter is in two groups (fc's in the backbone group too?): list each parameter once.": (
        "{call}: un parámetro está en dos grupos (¿los de fc también en el grupo backbone?): enumera cada parámetro "
        "una sola vez."
    ),
    "{call}: a training step changed BatchNorm running statistics ({key}): requires_grad=False does not stop them; "
    "the frozen backbone must stay in eval mode, also after model.train().": (
        "{call}: un paso de entrenamiento cambió estadísticas móviles de BatchNorm ({key}): requires_grad=False no las "
        "detiene; la red base congelada debe quedar en modo eval, también después de model.train()."
    ),
    "{call}: a training step changed the frozen backbone ({key}).": (
        "{call}: un paso de entrenamiento cambió la red base congelada ({key})."
    ),
    "{call}: a training step left the backbone unchanged: under {regime} it trains.": (
        "{call}: un paso de entrenamiento dejó la red base sin cambios: con {regime} se entrena."
    ),
    "{call}: only the head trains, and the backbone stays as loaded after model.train()": (
        "{call}: solo se entrena la cabeza, y la red base queda como se cargó también después de model.train()"
    ),
    "{call}: param_groups must be a list of dicts with 'params', 'lr' and 'name'.": (
        "{call}: param_groups debe ser una lista de dicts con 'params', 'lr' y 'name'."
    ),
    "{call}: some trainable parameters are in no group: the backbone group holds every one outside fc.": (
        "{call}: algunos parámetros entrenables no están en ningún grupo: el grupo backbone contiene todos los que "
        "están fuera de fc."
    ),
    "{call}: the backbone does not hold the pretrained weights ({key} differs): load them.": (
        "{call}: la red base no tiene los pesos preentrenados ({key} difiere): cárgalos."
    ),
    "{call}: the groups are named {names}, expected {expected} (the backbone's first, then the head).": (
        "{call}: los grupos se llaman {names}, se esperaba {expected} (primero el de la red base, después el de la "
        "cabeza)."
    ),
    "{call}: the groups hold {frozen} frozen parameters (requires_grad False): leave them out, so that a frozen "
    "backbone leaves the head group alone.": (
        "{call}: los grupos contienen {frozen} parámetros congelados (requires_grad False): déjalos afuera, para que "
        "con la red base congelada quede solo el grupo head."
    ),
    "{call}: the head did not change after a training step: it must be trainable.": (
        "{call}: la cabeza no cambió después de un paso de entrenamiento: debe ser entrenable."
    ),
    "{call}: the head has shape {shape}, expected ({num_classes}, 512): replace fc.": (
        "{call}: la cabeza tiene forma {shape}, se esperaba ({num_classes}, 512): reemplaza fc."
    ),
    "{call}: the head is frozen too ({count} trainable parameters, expected {expected}): fc trains.": (
        "{call}: la cabeza también está congelada ({count} parámetros entrenables, se esperaban {expected}): fc se "
        "entrena."
    ),
    "{call}: the model's methods {methods} were replaced; use ResNet18 as it is.": (
        "{call}: se reemplazaron los métodos {methods} del modelo; usa ResNet18 tal cual."
    ),
    "{call}: the parameter groups hold tensors that are not the model's parameters.": (
        "{call}: los grupos de parámetros contienen tensores que no son parámetros del modelo."
    ),
    "{call}: the second block has a projection: {hint}.": "{call}: el segundo bloque tiene una proyección: {hint}.",
    "{call}: the {name} group has lr {lr:g}, expected {expected:g}{why}.": (
        "{call}: el grupo {name} tiene lr {lr:g}, se esperaba {expected:g}{why}."
    ),
    "{call}: the {name} group holds {size} parameters, expected {expected}.": (
        "{call}: el grupo {name} contiene {size} parámetros, se esperaban {expected}."
    ),
    "{call}: {count} trainable parameters, expected {expected} (the head only): set requires_grad=False on every "
    "parameter outside fc ({name} still trains).": (
        "{call}: {count} parámetros entrenables, se esperaban {expected} (solo la cabeza): pon requires_grad=False en "
        "todos los parámetros fuera de fc ({name} todavía se entrena)."
    ),
    "{call}: {count} trainable parameters, expected {expected}: {what}.": (
        "{call}: {count} parámetros entrenables, se esperaban {expected}: {what}."
    ),
    "{count} missing: two blocks per stage, and a projection where the shape changes.": (
        "faltan {count}: dos bloques por etapa, y una proyección donde cambia la forma."
    ),
    "{count} too few: {hint}.": "{count} de menos: {hint}.",
    "{count} too many: convolutions followed by BatchNorm have no bias; one projection per stage at most.": (
        "{count} de más: las convoluciones seguidas de BatchNorm no tienen sesgo (bias); como mucho una proyección por "
        "etapa."
    ),
    "{count} too many: {hint}.": "{count} de más: {hint}.",
    "{label} has a bias: a convolution followed by BatchNorm has none (bias=False), BatchNorm's shift does its job": (
        "{label} tiene sesgo (bias): una convolución seguida de BatchNorm no lo lleva (bias=False), el desplazamiento "
        "de BatchNorm cumple esa función"
    ),
    "{label} has kernel {kernel} and padding {padding}, expected kernel {expected_kernel} and padding "
    "{expected_padding}": (
        "{label} tiene núcleo {kernel} y padding {padding}, se esperaba núcleo {expected_kernel} y padding "
        "{expected_padding}"
    ),
    "{label} has stride {stride}, expected {expected}: {role}": (
        "{label} tiene stride {stride}, se esperaba {expected}: {role}"
    ),
    "{label} maps {mine_in} to {mine_out} channels, expected {in_channels} to {out_channels}": (
        "{label} pasa de {mine_in} a {mine_out} canales, se esperaba de {in_channels} a {out_channels}"
    ),
    "{name} agrees with torch.nn.functional.conv2d on {trials} random inputs ({settings}){course}": (
        "{name} coincide con torch.nn.functional.conv2d en {trials} entradas aleatorias ({settings}){course}"
    ),
    "{name} forward on input of shape {shape}": "{name} (forward con una entrada de forma {shape})",
    "{name} has no BatchNorm layer bn2 with a scale and a shift: name the layers as torchvision does.": (
        "{name} no tiene una capa BatchNorm bn2 con escala y desplazamiento: nombra las capas como lo hace torchvision."
    ),
    "{name} has {count} epochs, expected {epochs}.": "{name} tiene {count} épocas, se esperaban {epochs}.",
    "{name} in {mode} mode: output differs from the reference block with the same weights by up to {error:.3g}: "
    "{hint}": (
        "{name} en modo {mode}: la salida difiere de la del bloque de referencia con los mismos pesos hasta en "
        "{error:.3g}: {hint}"
    ),
    "{name} is a History of {epochs} epochs with consistent values": (
        "{name} es un History de {epochs} épocas con valores coherentes"
    ),
    "{name} is a {type}; keep the History that train.fit returned.": (
        "{name} es un {type}; guarda el History que devolvió train.fit."
    ),
    "{name} returned a {type}, expected a torch.Tensor.": "{name} devolvió un {type}, se esperaba un torch.Tensor.",
    "{name} returned dtype {dtype}, expected {expected}.": "{name} devolvió dtype {dtype}, se esperaba {expected}.",
    "{name} with its residual branch zeroed (bn2 weight and bias = 0) is not relu(x): {hint}": (
        "{name} con la rama residual en cero (peso y sesgo de bn2 = 0) no es relu(x): {hint}"
    ),
    "{name}: cumulative_seconds {seconds} must be positive and increasing.": (
        "{name}: cumulative_seconds {seconds} debe ser positivo y creciente."
    ),
    "{name}: output shape {shape}, expected {expected}": "{name}: forma de salida {shape}, se esperaba {expected}",
    "{name}: parameter names differ from the reference: missing {missing}, unexpected {unexpected}; {hint}": (
        "{name}: los nombres de los parámetros difieren de los de la referencia: faltan {missing}, sobran "
        "{unexpected}; {hint}"
    ),
    "{name}: the block has extra parameters; use bias=False in convolutions followed by BatchNorm.": (
        "{name}: el bloque tiene parámetros de más; usa bias=False en las convoluciones seguidas de BatchNorm."
    ),
    "{name}: the block keeps the shape, so the shortcut is the identity: downsample = None.": (
        "{name}: el bloque conserva la forma, así que el atajo es la identidad: downsample = None."
    ),
    "{name}: values differ from torch.nn.functional.conv2d by up to {error:.3g}: {hint}": (
        "{name}: los valores difieren de los de torch.nn.functional.conv2d hasta en {error:.3g}: {hint}"
    ),
    "{name}: {column} {values} must be fractions between 0 and 1.": (
        "{name}: {column} {values} deben ser fracciones entre 0 y 1."
    ),
    "{name}: {hint}.": "{name}: {hint}.",
    "{name}: {key} has shape {shape}, expected {expected}.": (
        "{name}: {key} tiene forma {shape}, se esperaba {expected}."
    ),
    "{padding} zero": "{padding} cero",
    "{padding} zeros": "{padding} ceros",
    "{part} receives other numbers than torchvision's (of the right shape, {shape})": (
        "{part} recibe otros números que en torchvision (con la forma correcta, {shape})"
    ),
    "{part} receives {shape}, expected {expected}": "{part} recibe {shape}, se esperaba {expected}",
    "{shapes}: pool with avgpool (adaptive average pooling to 1x1), flatten, then fc": (
        "{shapes}: haz el pooling con avgpool (pooling promedio adaptativo a 1x1), aplana (flatten) y después fc"
    ),
    "{shapes}: run the stages in order, each on the output of the one before": (
        "{shapes}: ejecuta las etapas en orden, cada una sobre la salida de la anterior"
    ),
    "{shapes}{missing}: the stem is conv1 (7x7, stride 2, padding 3), bn1, relu, then maxpool (3x3, stride 2, "
    "padding 1), in that order": (
        "{shapes}{missing}: el stem es conv1 (7x7, stride 2, padding 3), bn1, relu y después maxpool (3x3, stride 2, "
        "padding 1), en ese orden"
    ),
    "{what} called torch's {name}: compute it yourself, that is the exercise.": (
        "{what} llamó a {name} de torch: calcúlalo tú, ese es el ejercicio."
    ),
    "{what} called {method}: write it yourself, that is the exercise.": (
        "{what} llamó a {method}: escríbelo tú, ese es el ejercicio."
    ),
    "{which} has stride {stride}, expected {expected}: the stage's stride is its first block's": (
        "{which} tiene stride {stride}, se esperaba {expected}: el stride de la etapa es el de su primer bloque"
    ),
    "{which} maps {mine_in} to {mine_out} channels, expected {in_channels} to {out_channels}: the first block "
    "changes the channels, the second takes out_channels in and keeps them": (
        "{which} pasa de {mine_in} a {mine_out} canales, se esperaba de {in_channels} a {out_channels}: el primer "
        "bloque cambia los canales; el segundo recibe out_channels y los conserva"
    ),
    # book/01_problem.md
    "photos": "fotos",
    "train": "entrenamiento",
    "val": "validación",
    "test": "prueba",
    "super-class": "superclase",
    "coarse classes": "clases gruesas",
    "fine classes": "clases finas",
    "coarse classes (number of fine classes)": "clases gruesas (cantidad de clases finas)",
    # book/02_convolution.md
    "layer": "capa",
    "input size": "tamaño de entrada",
    "output size": "tamaño de salida",
    "stem convolution 7x7, stride 2, padding 3": "convolución de entrada 7x7, paso 2, relleno 3",
    "3x3 convolution, stride 1, padding 1": "convolución 3x3, paso 1, relleno 1",
    "3x3 convolution, stride 2, padding 1": "convolución 3x3, paso 2, relleno 1",
    "1x1 projection, stride 2, padding 0": "proyección 1x1, paso 2, relleno 0",
    "our hand example: 3x3, stride 1, no padding": "nuestro ejemplo a mano: 3x3, paso 1, sin relleno",
    "image size (pixels a side)": "tamaño de la imagen (píxeles por lado)",
    "loops (conv2d_naive)": "bucles (conv2d_naive)",
    "im2col (conv2d_im2col)": "im2col (conv2d_im2col)",
    "PyTorch (F.conv2d)": "PyTorch (F.conv2d)",
    "not run": "no ejecutado",
    "milliseconds per call": "milisegundos por llamada",
    # book/03_what_layers_learn.md
    "pretrained on CIFAR-10": "preentrenada con CIFAR-10",
    "random initialisation": "inicialización aleatoria",
    "stage": "etapa",
    "feature maps (C x H x W)": "mapas de características (C x H x W)",
    "channel {channel}\n(prefers {name})": "canal {channel}\n(prefiere {name})",
    # book/04_cost_of_depth.md
    "kind": "tipo",
    "output (C x H x W)": "salida (C x H x W)",
    "parameters": "parámetros",
    "MACs (millions)": "MAC (millones)",
    "parameters (millions)": "parámetros (millones)",
    "multiply-adds (millions)": "multiplicaciones-acumulaciones (millones)",
    "milliseconds": "milisegundos",
    # book/05_going_deeper.md
    "weighted layer (1 = stem convolution, 18 = fully connected head)": (
        "capa con pesos (1 = convolución del bloque de entrada, 18 = cabeza totalmente conectada)"
    ),
    "network": "red",
    "final training loss": "pérdida de entrenamiento final",
    "final training accuracy": "exactitud de entrenamiento final",
    "final validation accuracy": "exactitud de validación final",
    "best validation accuracy": "mejor exactitud de validación",
    "training seconds": "segundos de entrenamiento",
    # book/06_residual_blocks.md
    "blocks": "bloques",
    "gradient norm at the input, with skip": "norma del gradiente en la entrada, con conexión residual",
    "without skip": "sin conexión residual",
    "with skip connection, y = F(x) + x": "con conexión residual, y = F(x) + x",
    "plain, y = F(x)": "plana, y = F(x)",
    "number of blocks (2 convolutions each)": "cantidad de bloques (2 convoluciones cada uno)",
    "norm of the gradient at the input": "norma del gradiente en la entrada",
    "step": "paso",
    "shape": "forma",
    "input x": "entrada x",
    "block": "bloque",
    "of which in the shortcut": "de ellos, en el atajo",
    "identity shortcut, 128 -> 128": "atajo identidad, 128 -> 128",
    "projection shortcut, 64 -> 128, stride 2": "atajo con proyección, 64 -> 128, paso 2",
    # book/07_resnet18.md
    "part": "parte",
    "made of": "compuesto por",
    "output shape": "forma de la salida",
    "input": "entrada",
    "stem": "bloque de entrada",
    "{blocks} BasicBlocks": "{blocks} bloques BasicBlock",
    "global average": "promedio global",
    "linear": "lineal",
    "what it is": "qué es",
    "fully connected {inputs} -> {outputs}": "totalmente conectada {inputs} -> {outputs}",
    "{k}x{k} conv {inputs} -> {outputs}, stride {stride}": "conv {k}x{k} {inputs} -> {outputs}, paso {stride}",
    "height = width (pixels)": "alto = ancho (píxeles)",
    "channels": "canales",
    # book/08_transfer_learning.md
    "trainable parameters": "parámetros entrenables",
    "parameter groups": "grupos de parámetros",
    "BatchNorm statistics": "estadísticas de BatchNorm",
    "{group} at lr {lr:g} ({parameters})": "{group} con lr {lr:g} ({parameters})",
    "{trainable} of {total}": "{trainable} de {total}",
    "backbone": "red base",
    "head": "cabeza",
    "frozen": "congeladas",
    "updated": "actualizadas",
    "head tensors changed": "tensores de la cabeza que cambiaron",
    "backbone tensors changed": "tensores de la red base que cambiaron",
    "backbone frozen by": "red base congelada con",
    "requires_grad=False only": "solo requires_grad=False",
    "freeze_backbone()": "freeze_backbone()",
    "largest change of a BatchNorm running mean": "mayor cambio de una media móvil de BatchNorm",
    "change of the validation features (relative)": "cambio de las características de validación (relativo)",
    # book/09_experiment.md
    "laptop": "portátil",
    "GPU": "GPU",
    "regime": "régimen",
    "not reached (best {accuracy:.1%})": "no alcanzado (mejor: {accuracy:.1%})",
    "{seconds} s (epoch {epoch:.3g})": "{seconds} s (época {epoch:.3g})",
    ", in {reached} of {runs} seeds": ", en {reached} de {runs} semillas",
    "laptop: time to 90 %": "portátil: tiempo hasta 90 %",
    "GPU: time to 90 %": "GPU: tiempo hasta 90 %",
    "laptop: s per epoch": "portátil: s por época",
    "GPU: s per epoch": "GPU: s por época",
    "laptop: test accuracy (%)": "portátil: exactitud de prueba (%)",
    "GPU: test accuracy (%)": "GPU: exactitud de prueba (%)",
    "laptop: range over seeds": "portátil: rango entre semillas",
    "GPU: range over seeds": "GPU: rango entre semillas",
    "**{name}** ({hardware}): no regime passed {target:.0%} validation accuracy on every seed; "
    "the closest was `{regime}` with {accuracy:.1%} at best.": (
        "**{name}** ({hardware}): ningún régimen superó {target:.0%} de exactitud de validación en todas las "
        "semillas; el más cercano fue `{regime}`, con {accuracy:.1%} como máximo."
    ),
    "`{regime}` after {seconds:.0f} s of training (epoch {epoch:.3g})": (
        "`{regime}` tras {seconds:.0f} s de entrenamiento (época {epoch:.3g})"
    ),
    "**{name}** ({hardware}): passed {target:.0%} validation accuracy on every seed: {parts}.": (
        "**{name}** ({hardware}): regímenes que superaron {target:.0%} de exactitud de validación en todas las "
        "semillas: {parts}."
    ),
    "{regimes} did not.": "{regimes}, no.",
    "more than twice the seed-to-seed standard deviation ({spread:.1f} points)": (
        "más del doble del desvío estándar entre semillas ({spread:.1f} puntos)"
    ),
    "less than twice the seed-to-seed standard deviation ({spread:.1f} points): this run does not separate them": (
        "menos del doble del desvío estándar entre semillas ({spread:.1f} puntos): esta ejecución no los distingue"
    ),
    "**{name}**, test photos: `{first}` {best:.1%}, {gap:.1f} points ahead of `{second}`, {verdict}; "
    "`{third}` {worst:.1%}.": (
        "**{name}**, fotos de prueba: `{first}` {best:.1%}, {gap:.1f} puntos por delante de `{second}`, {verdict}; "
        "`{third}` {worst:.1%}."
    ),
    "**Cost** (laptop): an epoch of `{cheap}` takes {cheap_seconds:.2f} s against {dear_seconds:.1f} s "
    "for `{dear}`, because only the head trains and the features are computed once.": (
        "**Costo** (portátil): una época de `{cheap}` lleva {cheap_seconds:.2f} s frente a {dear_seconds:.1f} s "
        "de `{dear}`, porque solo se entrena la cabeza y las características se calculan una vez."
    ),
    "**Where to cut**: the last stage's features serve the product photos best "
    "({accuracy:.1%}); here the claim that earlier features transfer better does not hold.": (
        "**Dónde cortar**: las características de la última etapa son las que mejor sirven a las fotos de "
        "productos ({accuracy:.1%}); aquí no se cumple que las características tempranas se transfieran mejor."
    ),
    "**Where to cut**: a linear head reads the product photos best from `{stage}` ({accuracy:.1%} "
    "on the test photos), {gain:.1f} points more than from `layer4`, the stage `feature_extraction` "
    "uses by default: the early stages' features are the generic ones, the last stage's are "
    "CIFAR-10's own.": (
        "**Dónde cortar**: una cabeza lineal clasifica mejor las fotos de productos a partir de `{stage}` "
        "({accuracy:.1%} en las fotos de prueba), {gain:.1f} puntos más que a partir de `layer4`, la etapa que "
        "`feature_extraction` usa por defecto: las características de las primeras etapas son las genéricas; "
        "las de la última, las propias de CIFAR-10."
    ),
    # book/10_exercises.md
    "notebook": "cuaderno",
    "title": "título",
    "cells to complete": "celdas para completar",
    "library checks called": "comprobaciones de la biblioteca que llama",
    # the assignments' titles: the first heading of each notebook, as the Spanish release has it
    "Assignment 1: convolution from scratch": "Trabajo práctico 1: la convolución desde cero",
    "Assignment 2: the residual block": "Trabajo práctico 2: el bloque residual",
    "Assignment 3: ResNet-18": "Trabajo práctico 3: ResNet-18",
    "Assignment 4: three ways to train": "Trabajo práctico 4: tres maneras de entrenar",
    "Assignment 5: the product experiment": "Trabajo práctico 5: el experimento con productos",
    # book/appendix/reproduce.md
    "folder": "carpeta",
    "command": "comando",
    "hardware": "hardware",
    "date": "fecha",
    "wall time": "duración",
}

# The Grocery Store Dataset's class names as the book shows them: the 3 super-classes and
# the 43 coarse classes. A name not listed (the 81 fine classes, mostly varieties and brands,
# or the folders of one's own photos) is shown as it is.
CLASS_NAMES: dict[str, dict[str, str]] = {
    "es": {
        # super-classes
        "Fruit": "Fruta",
        "Packages": "Envasados",
        "Vegetables": "Verduras",
        # coarse classes: fruit
        "Apple": "Manzana",
        "Avocado": "Palta",
        "Banana": "Banana",
        "Kiwi": "Kiwi",
        "Lemon": "Limón",
        "Lime": "Lima",
        "Mango": "Mango",
        "Melon": "Melón",
        "Nectarine": "Nectarina",
        "Orange": "Naranja",
        "Papaya": "Papaya",
        "Passion-Fruit": "Maracuyá",
        "Peach": "Durazno",
        "Pear": "Pera",
        "Pineapple": "Ananá",
        "Plum": "Ciruela",
        "Pomegranate": "Granada",
        "Red-Grapefruit": "Pomelo rosado",
        "Satsumas": "Mandarina satsuma",
        # coarse classes: packages
        "Juice": "Jugo",
        "Milk": "Leche",
        "Oat-Milk": "Leche de avena",
        "Oatghurt": "Yogur de avena",
        "Sour-Cream": "Crema agria",
        "Sour-Milk": "Leche fermentada",
        "Soy-Milk": "Leche de soja",
        "Soyghurt": "Yogur de soja",
        "Yoghurt": "Yogur",
        # coarse classes: vegetables
        "Asparagus": "Espárrago",
        "Aubergine": "Berenjena",
        "Cabbage": "Repollo",
        "Carrots": "Zanahorias",
        "Cucumber": "Pepino",
        "Garlic": "Ajo",
        "Ginger": "Jengibre",
        "Leek": "Puerro",
        "Mushroom": "Champiñón",
        "Onion": "Cebolla",
        "Pepper": "Morrón",
        "Potato": "Papa",
        "Red-Beet": "Remolacha",
        "Tomato": "Tomate",
        "Zucchini": "Zucchini",
    },
}


class MissingTranslation(KeyError):
    """A message shown on a figure or table has no entry in the requested language.

    A ``KeyError``: the project's own text is incomplete (a developer's mistake, not a user's).
    """

    def __str__(self) -> str:
        return str(self.args[0])


def check_language(language: str) -> str:
    """``language`` itself when the course speaks it, else a ``CourseError`` naming the choices."""
    if language not in LANGUAGES:
        raise CourseError(f"Unknown language {language!r}; choose from {', '.join(LANGUAGES)}.")
    return language


def translate(message: str, language: str = "en", /, **values: object) -> str:
    """``message`` (English, a ``str.format`` template) in ``language``, with ``values`` filled in."""
    if check_language(language) == "es":
        try:
            message = SPANISH[message]
        except KeyError:
            raise MissingTranslation(f"No Spanish for {message!r}: add it to SPANISH in course_lib/i18n.py") from None
    return message.format(**values) if values else message


def class_name(name: str, language: str = "en") -> str:
    """A dataset class name as shown in ``language``; names without a translation stay as they are."""
    if check_language(language) == "en":
        return name
    return CLASS_NAMES[language].get(name, name)


def class_names(names: Iterable[str], language: str = "en") -> list[str]:
    return [class_name(name, language) for name in names]


def number(value: int, language: str = "en") -> str:
    """A whole number for a message in ``language``: 11,689,512 in English; in Spanish no separator up to
    9999, then groups of three split by a narrow space (2640, 11 689 512), since a comma there reads as
    a decimal (the SI's rule and the Real Academia Española's, as the book writes its numbers)."""
    if check_language(language) == "en" or abs(value) < 10_000:
        return f"{value:,}" if language == "en" else str(value)
    return f"{value:,}".replace(",", "\u202f")
