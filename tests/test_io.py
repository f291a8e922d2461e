"""eegcrp.io: temporaries left by a killed writer are removed from the whole folder tree."""

from __future__ import annotations

from eegcrp.io import TMP_PREFIX, remove_temporary


def test_remove_temporary_reaches_every_sub_folder(tmp_path):
    stage = tmp_path / "training"
    keep = [stage / "manifest.json", stage / "folds" / "fold-0.pt",
            stage / "folds" / "tmp-not-ours.pt"]
    temporaries = [stage / f"{TMP_PREFIX}manifest-x", stage / "folds" / f"{TMP_PREFIX}a.pt",
                   stage / "folds" / "deep" / f"{TMP_PREFIX}b-epo.fif"]
    for path in keep + temporaries:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    (stage / f"{TMP_PREFIX}folder").mkdir()  # a folder is nothing atomic_path wrote
    assert remove_temporary(stage) == len(temporaries)
    assert not any(p.exists() for p in temporaries)
    assert all(p.exists() for p in keep) and (stage / f"{TMP_PREFIX}folder").is_dir()
    assert remove_temporary(stage) == 0
    assert remove_temporary(tmp_path / "missing") == 0



def test_atomic_files_get_the_permissions_of_a_normal_write(tmp_path):
    import os
    import stat

    from eegcrp.io import _umask, write_text_atomic

    mask = os.umask(0o022)
    os.umask(mask)
    assert _umask() == mask  # read without changing it
    write_text_atomic(tmp_path / "a.txt", "x")
    (tmp_path / "b.txt").write_text("x")
    mode = stat.S_IMODE((tmp_path / "a.txt").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "b.txt").stat().st_mode) == 0o666 & ~mask
