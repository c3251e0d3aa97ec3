"""The registry of PyTorch stand-ins: Incept's model name -> module in this folder, input size and fixture folder.

Each module's build(num_classes) makes a network with its reference's state_dict keys, shapes and order; check.py
proves, for every entry, that it loads the reference fixture strictly and reproduces the reference logits.
"""
import importlib

INPUT_SIZE = {"bn_inception": 224, "inception_v4": 299, "inception_resnet_v1": 160, "inception_resnet_v2": 299}
FIXTURE = {"bn_inception": "cadene_bninception", "inception_v4": "timm_inception_v4",
           "inception_resnet_v1": "facenet_inception_resnet_v1", "inception_resnet_v2": "timm_inception_resnet_v2"}


def build(name, num_classes=1000):
    return importlib.import_module(name).build(num_classes)
