"""Bad inputs raise DiffusabilityError (a ValueError) with the command line's message: where the command
line names the file, Python names the argument."""

import numpy as np
import pytest

import diffusability as d


def cli_message(cli, *args):
    r = cli(*args, ok=False)
    assert r.returncode == 2, r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("error: ")
    return line[len("error: "):]


def after_location(msg, location):
    assert msg.startswith(location + ": "), msg
    return msg[len(location) + 2:]


def test_error_is_a_value_error():
    assert issubclass(d.DiffusabilityError, ValueError)


def test_wrong_rank(cli, tmp_path, dataset):
    z = dataset[0][:, 0].astype(np.float32)  # (N, H, W)
    np.save(tmp_path / "z.npy", z)
    want = cli_message(cli, "metrics", tmp_path / "z.npy", "--quiet")
    with pytest.raises(d.DiffusabilityError) as e:
        d.metrics(z)
    assert after_location(str(e.value), "latents") == after_location(want, str(tmp_path / "z.npy"))
    assert "expected 4 dimensions (N, C, H, W), found shape (120, 8, 8)" in str(e.value)


def test_integer_latents(cli, tmp_path, dataset):
    z = np.round(dataset[0] * 10).astype(np.int32)
    np.save(tmp_path / "z.npy", z)
    want = cli_message(cli, "metrics", tmp_path / "z.npy", "--quiet")
    with pytest.raises(d.DiffusabilityError) as e:
        d.metrics(z)
    assert after_location(str(e.value), "latents") == after_location(want, str(tmp_path / "z.npy"))
    assert "found dtype i32" in str(e.value)


def test_mismatched_labels(cli, files, dataset):
    z, y, m = dataset
    short = y[:-3]
    np.save(files["dir"] / "short.npy", short)
    want = cli_message(cli, "metrics", files["f32"], "--labels", files["dir"] / "short.npy", "--quiet")
    with pytest.raises(d.DiffusabilityError) as e:
        d.metrics(z, short)
    got = after_location(str(e.value), "labels")
    assert got == after_location(want, str(files["dir"] / "short.npy"))
    assert got == "has 117 entries, expected 120 (one per latent)"


def test_bad_masks_and_nan(cli, files, dataset):
    z, y, m = dataset
    with pytest.raises(d.DiffusabilityError, match=r"^masks: mask size 15x15 is not a positive whole"):
        d.metrics(z, y, m[:, :15, :15])
    bad = z.astype(np.float32)
    bad[5, 1, 2, 3] = np.nan
    with pytest.raises(d.DiffusabilityError,
                       match=r"^latents: expected finite values, found 1 NaN; the first is in sample 5$"):
        d.metrics(bad)


def test_parameter_messages_equal_cli(cli, files, dataset):
    z, y, m = dataset
    for flag, value, kw in (("--lnc-k", "0", {"lnc_k": 0}), ("--lnc-metric", "dot", {"lnc_metric": "dot"}),
                            ("--sec-ratio", "1.5", {"sec_ratio": 1.5})):
        want = cli_message(cli, "metrics", files["f32"], flag, value, "--quiet")
        with pytest.raises(d.DiffusabilityError) as e:
            d.metrics(z, y, **kw)
        assert str(e.value) == want
    want = cli_message(cli, "metrics", files["f32"], "--metrics", "nope", "--quiet")
    with pytest.raises(d.DiffusabilityError) as e:
        d.metrics(z, metrics="nope")
    assert str(e.value) == want
    want = cli_message(cli, "metrics", files["f32"], "--metrics", "lnc", "--quiet")
    with pytest.raises(d.DiffusabilityError) as e:
        d.metrics(z, metrics="lnc")
    assert str(e.value) == want
    with pytest.raises(d.DiffusabilityError, match="expected an integer, found `True`"):
        d.metrics(z, y, lnc_k=True)
    with pytest.raises(d.DiffusabilityError, match="--threads: expected at least 1, found 0"):
        d.metrics(z, threads=0)


def test_unknown_keyword_is_a_type_error(dataset):
    with pytest.raises(TypeError, match="unexpected keyword argument 'lnc_kk'"):
        d.metrics(dataset[0], lnc_kk=3)


def test_missing_file_is_file_not_found(dataset, tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        d.metrics(dataset[0], normalize=f"stats:{tmp_path / 'nope.npz'}")
    with pytest.raises(FileNotFoundError):
        d.fd(tmp_path / "a.npy", tmp_path / "b.npy")


def test_unsupported_dtype(dataset):
    with pytest.raises(d.DiffusabilityError, match="^latents: unsupported dtype `complex128`"):
        d.metrics(dataset[0].astype(np.complex128))
