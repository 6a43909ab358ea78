"""The synthetic copies' MAT-files: MATLAB's compressed layout, read back value for value."""

import io
import struct

import numpy as np
import scipy.io

from physiosync.synthetic._matwrite import write_mat


def _top_level_types(raw: bytes) -> list:
    types, pos = [], 128
    while pos + 8 <= len(raw):
        mdtype, nbytes = struct.unpack_from("<II", raw, pos)
        types.append(mdtype)
        pos += 8 + nbytes
    assert pos == len(raw)  # the elements tile the file exactly
    return types


def test_each_variable_is_one_compressed_element_that_reads_back():
    rng = np.random.default_rng(0)
    variables = {"eeg1": rng.normal(size=(4, 300)), "labels": np.arange(5.0),
                 "cells": np.array([np.ones(3), np.zeros((2, 2))], dtype=object)}
    packed, plain = io.BytesIO(), io.BytesIO()
    write_mat(packed, variables)
    write_mat(plain, variables, compress=False)
    assert _top_level_types(packed.getvalue()) == [15, 15, 15]  # miCOMPRESSED
    assert _top_level_types(plain.getvalue()) == [14, 14, 14]  # miMATRIX
    assert len(packed.getvalue()) < len(plain.getvalue())
    for buf in (packed, plain):
        buf.seek(0)
        back = scipy.io.loadmat(buf)
        np.testing.assert_array_equal(back["eeg1"], variables["eeg1"])
        np.testing.assert_array_equal(back["labels"], variables["labels"][None, :])
        assert [c.shape for c in back["cells"].ravel()] == [(1, 3), (2, 2)]
