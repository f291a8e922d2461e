"""Labelled results as netCDF-4: round trip, attributes, same bytes, damaged files."""

import h5netcdf
import numpy as np
import pytest
import xarray as xr

from eegcrp.netcdf import read_attributes, read_netcdf, write_netcdf


def _dataset() -> xr.Dataset:
    return xr.Dataset(
        {"values": (("subject", "band"), np.arange(6.0).reshape(2, 3)),
         "label": (("subject",), np.array(["brain", "eye"], dtype=object)),
         "count": (("subject",), np.array([3, 4], np.int64))},
        coords={"subject": ["S01", "S02"], "band": ["theta", "alpha", "beta"],
                "band_low": ("band", [4.0, 8.0, 13.0])},
        attrs={"name": "rep00", "n": 3, "error": float("nan"), "classes": ["left", "right"],
               "bands": {"alpha": [8.0, 13.0]}, "flag": True, "none": None})


def test_round_trip_keeps_values_coordinates_and_attributes(tmp_path):
    ds = _dataset()
    write_netcdf(ds, tmp_path / "a.nc")
    back = read_netcdf(tmp_path / "a.nc")
    xr.testing.assert_equal(back.drop_attrs(), ds.drop_attrs().assign(
        label=ds["label"].astype(str)))
    assert back.attrs["classes"] == ["left", "right"]
    assert back.attrs["bands"] == {"alpha": [8.0, 13.0]}
    assert back.attrs["flag"] is True and back.attrs["none"] is None
    assert back.attrs["n"] == 3 and np.isnan(back.attrs["error"])
    assert read_attributes(tmp_path / "a.nc", ("name", "classes", "absent")) == {
        "name": "rep00", "classes": ["left", "right"]}


def test_any_netcdf_reader_sees_the_dimensions(tmp_path):
    write_netcdf(_dataset(), tmp_path / "a.nc")
    with h5netcdf.File(tmp_path / "a.nc", "r") as f:  # not through eegcrp or xarray
        assert f.variables["values"].dimensions == ("subject", "band")
        names = [bytes(v).decode() for v in f.variables["subject"][...]]  # h5py gives bytes
        assert names == ["S01", "S02"]


def test_same_dataset_same_bytes(tmp_path):
    write_netcdf(_dataset(), tmp_path / "a.nc")
    write_netcdf(_dataset(), tmp_path / "b.nc")
    assert (tmp_path / "a.nc").read_bytes() == (tmp_path / "b.nc").read_bytes()


def test_damaged_or_missing_file_reads_as_absent_and_the_target_is_replaced_whole(tmp_path):
    path = tmp_path / "a.nc"
    assert read_attributes(path) is None
    write_netcdf(_dataset(), path)
    path.write_bytes(path.read_bytes()[:200])  # a killed writer's leftover
    assert read_attributes(path) is None
    write_netcdf(_dataset(), path)
    assert read_attributes(path)["name"] == "rep00"
    assert [p.name for p in tmp_path.iterdir()] == ["a.nc"]  # no temporary left behind


def test_the_reserved_attribute_name_is_refused(tmp_path):
    ds = _dataset().assign_attrs(json_attributes="x")
    with pytest.raises(ValueError, match="reserved"):
        write_netcdf(ds, tmp_path / "a.nc")
    assert not (tmp_path / "a.nc").exists()
