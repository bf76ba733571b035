// Runs dcc.js (the Digital Credentials Consortium's credential libraries,
// see dcc.js for its commands) with node, for the cross-check test and the
// Data Integrity benchmark. Inputs and outputs go through files in a
// temporary directory the runner owns.
#pragma once

#include <sys/wait.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

namespace backpack::testing {

struct DccRun {
  int exit_code = -1;  // node's exit status; -1 when it could not be started or was killed
  std::string out;     // standard output (a JSON document on success)
  std::string err;     // standard error (dcc.js's message on failure)
};

class DccRunner {
 public:
  // `node`: the node executable; `dcc_dir`: the folder holding dcc.js and
  // its node_modules.
  DccRunner(std::string node, std::filesystem::path dcc_dir) : node_(std::move(node)), dir_(std::move(dcc_dir)) {
    std::string pattern = (std::filesystem::temp_directory_path() / "dcc-run-XXXXXX").string();
    if (::mkdtemp(pattern.data()) != nullptr) work_ = pattern;
  }
  ~DccRunner() {
    std::error_code ignored;
    if (!work_.empty()) std::filesystem::remove_all(work_, ignored);
  }
  DccRunner(const DccRunner&) = delete;
  DccRunner& operator=(const DccRunner&) = delete;

  const std::filesystem::path& dir() const { return dir_; }
  bool modules_installed() const { return std::filesystem::exists(dir_ / "node_modules" / "@digitalcredentials"); }

  // Writes `content` to a file of the work directory and returns its path.
  std::string WriteFile(const std::string& name, const std::string& content) const {
    const std::filesystem::path path = work_ / name;
    std::ofstream(path, std::ios::binary) << content;
    return path.string();
  }

  // node dcc.js <args...>, waiting for it to finish.
  DccRun Run(const std::vector<std::string>& args) const {
    DccRun run;
    if (work_.empty()) {
      run.err = "could not create a temporary directory";
      return run;
    }
    const std::filesystem::path out = work_ / "stdout", err = work_ / "stderr";
    std::string command = Quote(node_) + " " + Quote((dir_ / "dcc.js").string());
    for (const std::string& arg : args) command += " " + Quote(arg);
    command += " </dev/null >" + Quote(out.string()) + " 2>" + Quote(err.string());
    const int status = std::system(command.c_str());
    if (status != -1 && WIFEXITED(status)) run.exit_code = WEXITSTATUS(status);
    run.out = Read(out);
    run.err = Read(err);
    return run;
  }

 private:
  static std::string Quote(const std::string& text) {
    std::string out = "'";
    for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
  }
  static std::string Read(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

  std::string node_;
  std::filesystem::path dir_;
  std::filesystem::path work_;
};

}  // namespace backpack::testing
