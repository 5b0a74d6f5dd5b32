# Builds and runs a small program against the package `conan create` just made.
import os

from conan import ConanFile
from conan.tools.build import can_run
from conan.tools.cmake import CMake, cmake_layout


class LivecastTestPackageConan(ConanFile):
    settings = "os", "arch", "compiler", "build_type"
    generators = "CMakeDeps", "CMakeToolchain"
    test_type = "explicit"

    def requirements(self):
        self.requires(self.tested_reference_str)

    def layout(self):
        cmake_layout(self)

    def build(self):
        cmake = CMake(self)
        cmake.configure(variables={"LIVECAST_WITH_REDIS": bool(self.dependencies["livecast"].options.with_redis)})
        cmake.build()

    def test(self):
        if can_run(self):
            cmake_binary = os.path.join(self.cpp.build.bindir, "test_package")
            self.run(cmake_binary, env="conanrun")
