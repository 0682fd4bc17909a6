"""An onnxruntime (.ort) model read back into an ONNX model, so onnxruntime can optimise it.

onnxruntime applies no graph optimisation to a model loaded in its own ORT format: the
optimisations were meant to be applied when the file was made. Moonshine's int8 decoder
(`app/perception/asr_moonshine.py`) therefore turns every weight back into float32 at every
step (a Cast, a Mul and a Transpose of each constant: 85 % of a 74 ms step on this machine). The
same graph as an ONNX model is constant-folded when it is loaded, so those float32 weights are
made once. The ORT file is a flatbuffer whose schema and Python reader ship inside the
onnxruntime wheel (`ort_flatbuffers_py`, in onnxruntime/tools/ort_format_model); the ONNX model is
built with the `onnx` package. Nothing is written to disk.

Only what an ORT file can hold is read: nodes with their attributes (subgraphs included), the
initializers (dense, within the file), the value infos and the opsets. A file outside that (an
initializer stored outside the flatbuffer, sparse initializers, sequence or map types on a graph
input or output) raises ValueError, and the caller keeps the ORT model as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


class _Schema:
    """The ORT flatbuffers schema's modules (`fbs.TensorDataType`, …), each imported by name when
    first used, as the top-level package `ort_flatbuffers_py` that onnxruntime's wheel carries
    in onnxruntime/tools/ort_format_model (which onnxruntime's own tools put on sys.path, as this
    does). Neither the `fbs` package's __init__ (it finds its modules by globbing its directory
    for .py files, which a frozen bundle does not have) nor onnxruntime's tools package (which
    needs that at import) is relied on."""

    def __getattr__(self, name: str) -> Any:
        import importlib

        try:
            module = importlib.import_module(f"ort_flatbuffers_py.fbs.{name}")
        except ModuleNotFoundError:
            _schema_on_path()
            try:
                module = importlib.import_module(f"ort_flatbuffers_py.fbs.{name}")
            except ModuleNotFoundError as exc:
                raise AttributeError(f"the ORT flatbuffers schema has no {name}: {exc}") from exc
        setattr(self, name, module)
        return module


def _schema_on_path() -> None:
    import importlib.util
    import sys

    spec = importlib.util.find_spec("onnxruntime")  # a top-level name: nothing is imported
    for root in (spec.submodule_search_locations or []) if spec else []:
        where = str(Path(root) / "tools" / "ort_format_model")
        if (Path(where) / "ort_flatbuffers_py").is_dir() and where not in sys.path:
            sys.path.append(where)


_SCHEMA = _Schema()


def _fbs() -> Any:
    return _SCHEMA


def _s(b: bytes | None) -> str:
    return b.decode("utf-8") if b else ""


def _tensor(t: Any) -> Any:
    from onnx import TensorProto

    if t.ExternalDataOffset() >= 0:
        raise ValueError(f"initializer {_s(t.Name())!r} is stored outside the ORT flatbuffer")
    proto = TensorProto()
    proto.name = _s(t.Name())
    proto.dims.extend(int(d) for d in (t.DimsAsNumpy() if t.DimsLength() else []))
    proto.data_type = int(t.DataType())
    if proto.data_type == TensorProto.STRING:
        proto.string_data.extend(t.StringData(i) for i in range(t.StringDataLength()))
    elif t.RawDataLength():
        proto.raw_data = np.asarray(t.RawDataAsNumpy(), np.uint8).tobytes()
    return proto


def _value_info(v: Any) -> Any:
    from onnx import ValueInfoProto

    fbs = _fbs()
    proto = ValueInfoProto()
    proto.name = _s(v.Name())
    info = v.Type()
    if info is None:
        return proto
    if info.ValueType() != fbs.TypeInfoValue.TypeInfoValue.tensor_type:
        raise ValueError(f"value {proto.name!r} is not a tensor")
    tab = info.Value()
    tensor = fbs.TensorTypeAndShape.TensorTypeAndShape()
    tensor.Init(tab.Bytes, tab.Pos)
    proto.type.tensor_type.elem_type = int(tensor.ElemType())
    shape = tensor.Shape()
    if shape is not None:
        out = proto.type.tensor_type.shape
        out.SetInParent()
        for i in range(shape.DimLength()):
            dim = out.dim.add()
            value = shape.Dim(i).Value()
            if value is None:
                continue
            if value.DimType() == fbs.DimensionValueType.DimensionValueType.VALUE:
                dim.dim_value = int(value.DimValue())
            elif value.DimType() == fbs.DimensionValueType.DimensionValueType.PARAM:
                dim.dim_param = _s(value.DimParam())
    return proto


def _attribute(a: Any) -> Any:
    from onnx import AttributeProto

    kind = _fbs().AttributeType.AttributeType
    proto = AttributeProto()
    proto.name = _s(a.Name())
    t = int(a.Type())
    proto.type = t  # type: ignore[assignment]  # the ORT enum has ONNX's numbers
    if t == kind.FLOAT:
        proto.f = a.F()
    elif t == kind.INT:
        proto.i = a.I()
    elif t == kind.STRING:
        proto.s = a.S() or b""
    elif t == kind.TENSOR:
        proto.t.CopyFrom(_tensor(a.T()))
    elif t == kind.GRAPH:
        proto.g.CopyFrom(_graph(a.G(), "subgraph"))
    elif t == kind.FLOATS:
        proto.floats.extend(float(x) for x in a.FloatsAsNumpy())
    elif t == kind.INTS:
        proto.ints.extend(int(x) for x in a.IntsAsNumpy())
    elif t == kind.STRINGS:
        proto.strings.extend(a.Strings(i) for i in range(a.StringsLength()))
    elif t == kind.TENSORS:
        proto.tensors.extend(_tensor(a.Tensors(i)) for i in range(a.TensorsLength()))
    elif t == kind.GRAPHS:
        proto.graphs.extend(_graph(a.Graphs(i), "subgraph") for i in range(a.GraphsLength()))
    else:
        raise ValueError(f"attribute {proto.name!r} has a type ({t}) this reader does not know")
    return proto


def _graph(g: Any, name: str) -> Any:
    from onnx import GraphProto, NodeProto

    if g.SparseInitializersLength():
        raise ValueError("the model has sparse initializers")
    proto = GraphProto()
    proto.name = name
    proto.initializer.extend(_tensor(g.Initializers(i)) for i in range(g.InitializersLength()))
    infos = {}
    for i in range(g.NodeArgsLength()):
        info = _value_info(g.NodeArgs(i))
        infos[info.name] = info
    initialized = {t.name for t in proto.initializer}
    for i in range(g.InputsLength()):
        arg = _s(g.Inputs(i))
        if arg not in initialized:
            proto.input.append(infos[arg])
    proto.output.extend(infos[_s(g.Outputs(i))] for i in range(g.OutputsLength()))
    nodes = [g.Nodes(i) for i in range(g.NodesLength())]
    for n in sorted(nodes, key=lambda n: n.Index()):  # a topological order, as ORT wrote it
        node = NodeProto()
        node.name = _s(n.Name())
        node.op_type = _s(n.OpType())
        node.domain = _s(n.Domain())
        node.input.extend(_s(n.Inputs(i)) for i in range(n.InputsLength()))
        node.output.extend(_s(n.Outputs(i)) for i in range(n.OutputsLength()))
        node.attribute.extend(_attribute(n.Attributes(i)) for i in range(n.AttributesLength()))
        proto.node.append(node)
    edge_values = {o for n in proto.node for o in n.output} - {o.name for o in proto.output}
    proto.value_info.extend(infos[v] for v in sorted(edge_values) if v in infos and
                            infos[v].HasField("type"))
    return proto


def ort_to_onnx(path: Path | str) -> bytes:
    """The ONNX model (serialised) holding the same graph as the ORT-format model at `path`.
    Raises ValueError when the file is not an ORT model or holds what this reader cannot carry
    over."""
    from onnx import helper

    fbs = _fbs()
    data = Path(path).read_bytes()
    if data[4:8] != b"ORTM":
        raise ValueError(f"{path} is not an ORT-format model")
    session = fbs.InferenceSession.InferenceSession.GetRootAs(data, 0)
    model = session.Model()
    if model is None or model.Graph() is None:
        raise ValueError(f"{path} holds no model graph")
    opsets = [helper.make_opsetid(_s(model.OpsetImport(i).Domain()),
                                  int(model.OpsetImport(i).Version()))
              for i in range(model.OpsetImportLength())]
    proto = helper.make_model(_graph(model.Graph(), "main"), opset_imports=opsets,
                              producer_name=_s(model.ProducerName()) or "ort_to_onnx")
    proto.ir_version = int(model.IrVersion())
    return bytes(proto.SerializeToString())
