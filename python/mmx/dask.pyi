# Type stubs for python/mmx/dask.py.
import os
from typing import Any, NamedTuple, Optional, Sequence, Union

import numpy as np
import numpy.typing as npt
from distributed import Client, WorkerPlugin

class EmbedResult(NamedTuple):
    embeddings: npt.NDArray[np.float32]
    inputs: list[str]
    out: str

class ModelPlugin(WorkerPlugin):
    model: str
    kind: str
    embedder: Any
    loads: int
    def __init__(self, model: Union[str, os.PathLike[str]], kind: str, device: str = ..., dtype: Optional[str] = ...,
                 threads: Optional[int] = ...) -> None: ...

def partition(sizes: Sequence[float], count: int) -> list[tuple[int, int]]: ...
def merge_shards(out: str, count: int, inputs: Sequence[str], kind: str) -> npt.NDArray[np.float32]: ...
def embed(inputs: Sequence[Union[str, os.PathLike[str]]], model: Union[str, os.PathLike[str]], client: Client,
          out: Optional[Union[str, os.PathLike[str]]] = ..., kind: Optional[str] = ..., partitions: Optional[int] = ...,
          batch_size: int = ..., pooling: Optional[str] = ..., normalize: bool = ..., device: str = ...,
          dtype: Optional[str] = ..., threads: Optional[int] = ..., retries: int = ...,
          timeout: Optional[float] = ...) -> EmbedResult: ...
