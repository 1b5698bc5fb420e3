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

// `import detrkit._C` loads this library, which runs the registrations above; the module itself is empty.
extern "C" PyObject* PyInit__C(void) {
  static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_C", "detrkit compiled operators", -1, nullptr};
  return PyModule_Create(&module);
}
