"""pip install . — configures and builds mmx with CMake (the module python/src/native.cpp and the libraries it
links) and puts the module and those libraries into the package folder, where the module finds them
($ORIGIN). MMX_BUILD_DIR=DIR reuses a configured build tree instead (CI: the tree the tests ran in)."""
import os
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        source = os.path.dirname(os.path.abspath(__file__))
        build = os.environ.get("MMX_BUILD_DIR")
        if build:
            build = os.path.abspath(build)
        else:
            build = os.path.join(os.path.abspath(self.build_temp), "cmake")
            subprocess.check_call(["cmake", "-S", source, "-B", build, "-DCMAKE_BUILD_TYPE=Release",
                                   "-DMMX_BUILD_TESTS=OFF", "-DMMX_BUILD_BENCH=OFF", "-DMMX_PYTHON=ON",
                                   f"-DPython3_EXECUTABLE={sys.executable}", "-DCMAKE_BUILD_RPATH=$ORIGIN"])
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 1))
        subprocess.check_call(["cmake", "--build", build, "--target", "mmx_wheel", "-j", jobs])
        package = os.path.dirname(os.path.abspath(self.get_ext_fullpath(ext.name)))
        os.makedirs(package, exist_ok=True)
        with open(os.path.join(build, "python", "wheel-files.txt"), encoding="utf-8") as f:
            for path in f.read().split():
                shutil.copy2(path, os.path.join(package, os.path.basename(path)))


setup(ext_modules=[Extension("mmx._native", sources=[])], cmdclass={"build_ext": CMakeBuild})
