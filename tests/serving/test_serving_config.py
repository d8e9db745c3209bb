"""savedmodel/: the TF Serving config files parse with TF Serving's protos
and agree with the exporter."""

import os
import re

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from alm_tf.serving import export
from tests.serving import serving_helpers as sh

SAVEDMODEL = os.path.join(sh.REPO, "savedmodel")


def _read(name):
    with open(os.path.join(SAVEDMODEL, name)) as f:
        return f.read()


def test_models_config_parses():
    config = text_format.Parse(_read("models.config"), model_server_config_pb2.ModelServerConfig())
    (model,) = config.model_config_list.config
    assert model.name == "alm" and model.model_platform == "tensorflow"
    assert model.base_path == "/models/alm"
    assert model.model_version_policy.WhichOneof("policy_choice") == "latest"
    assert model.model_version_policy.latest.num_versions == 2


def test_batching_parameters_parse():
    batching_class, _ = sh.serving_config_protos()
    params = text_format.Parse(_read("batching_parameters.txt"), batching_class())
    sizes = list(params.allowed_batch_sizes)
    assert sizes == sorted(sizes) and sizes[-1] == params.max_batch_size.value
    assert params.batch_timeout_micros.value > 0 and params.num_batch_threads.value >= 1
    assert not params.pad_variable_length_inputs
    assert tuple(sizes) == export.WARMUP_BATCH_SIZES  # every padded size is warmed up


def test_monitoring_config_parses():
    _, monitoring_class = sh.serving_config_protos()
    config = text_format.Parse(_read("monitoring.config"), monitoring_class())
    assert config.prometheus_config.enable
    assert config.prometheus_config.path == "/monitoring/prometheus/metrics"


def test_compose_file():
    text = _read("docker-compose.gpu.yml")
    assert re.search(r"image: tensorflow/serving:\$\{TFS_VERSION:-[\d.]+\}-gpu", text)
    flags = re.findall(r"^\s*- (--[\w_]+)(?:=(\S+))?", text, re.M)
    flags = dict(flags)
    for flag in ("--enable_batching", "--batching_parameters_file", "--model_config_file",
                 "--monitoring_config_file"):
        assert flag in flags, flag
    assert flags["--rest_api_port"] == "8501" and flags["--port"] == "8500"
    for flag, name in (("--model_config_file", "models.config"),
                       ("--batching_parameters_file", "batching_parameters.txt"),
                       ("--monitoring_config_file", "monitoring.config")):
        assert f"./{name}:{flags[flag]}:ro" in text, name
    assert ":/models/alm:ro" in text  # base_path of models.config
    assert re.search(r"reservations:\s*devices:\s*- driver: nvidia\s*count: 1\s*"
                     r"capabilities: \[gpu\]", text)
