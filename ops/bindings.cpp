// Registers the detrkit operators with the PyTorch dispatcher (torch.ops.detrkit.*). The CPU and CUDA kernels
// register their implementations next to their code (TORCH_LIBRARY_IMPL in each kernel file).
#include <Python.h>
#include <torch/library.h>

TORCH_LIBRARY(detrkit, m) {
  m.def(
      "ms_deform_attn_forward(Tensor value, Tensor spatial_shapes, Tensor level_start_index, Tensor sampling_loc, "
      "Tensor attn_weight, int im2col_step) -> Tensor");
  m.def(
      "ms_deform_attn_backward(Tensor value, Tensor spatial_shapes, Tensor level_start_index, Tensor sampling_loc, "
      "Tensor attn_weight, Tensor grad_output, int im2col_step) -> (Tensor, Tensor, Tensor)");
  m.def("batched_nms(Tensor boxes, Tensor scores, Tensor groups, float iou_threshold) -> Tensor");
}

// `import detrkit._C` loads this library, which runs the registrations above. The module holds one attribute,
// `kernel_devices`: the device types every op has a kernel for in this build ("cpu", and "cuda" when setup.py
// compiled the CUDA kernels and defined DETRKIT_WITH_CUDA).
extern "C" PyObject* PyInit__C(void) {
  static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_C", "detrkit compiled operators", -1, nullptr};
  PyObject* m = PyModule_Create(&module);
  if (m == nullptr) return nullptr;
#ifdef DETRKIT_WITH_CUDA
  PyObject* devices = Py_BuildValue("(ss)", "cpu", "cuda");
#else
  PyObject* devices = Py_BuildValue("(s)", "cpu");
#endif
  if (devices == nullptr || PyModule_AddObject(m, "kernel_devices", devices) < 0) {
    Py_XDECREF(devices);
    Py_DECREF(m);
    return nullptr;
  }
  return m;
}
