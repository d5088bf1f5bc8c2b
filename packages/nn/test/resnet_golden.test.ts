// ResNet-18/50 against torchvision (scripts/fixtures/make_resnet_goldens.py) on the 'ts' backend.
import { goldenSuites } from './golden_suite.js';

goldenSuites('ts', ['float32', 'float64']);
