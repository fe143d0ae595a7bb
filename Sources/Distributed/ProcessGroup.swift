import CMPI
import Foundation
import TesseraEngine

/// The processes of one training job: rank and size, and the collectives data-parallel training needs. Without
/// an MPI launcher it is one process and every collective is a no-op; under `mpirun` or `srun --mpi=pmix` it is
/// Open MPI, loaded at run time (`tc_mpi_start`), so the binary neither links nor needs MPI to run alone.
public final class ProcessGroup: @unchecked Sendable {
    public let rank: Int, size: Int
    /// Whether MPI carries the collectives (false: one process, launched or not).
    public let usesMPI: Bool

    /// One process, no MPI.
    public static let single = ProcessGroup(rank: 0, size: 1, usesMPI: false)

    init(rank: Int, size: Int, usesMPI: Bool) {
        self.rank = rank
        self.size = size
        self.usesMPI = usesMPI
    }

    /// The variables by which a launcher tells its processes apart (Open MPI's mpirun, PMIx under srun, MPICH's PMI).
    public static let launcherVariables = ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"]
    /// Where the MPI library is looked for: `TESSERA_MPI_LIBRARY`, else Debian's Open MPI.
    public static let libraryVariable = "TESSERA_MPI_LIBRARY"
    public static let defaultLibrary = "libmpi.so.40"

    /// The group the environment describes: a launched process starts MPI (and fails, saying why, if it cannot);
    /// any other is `single`. `environment` is the process's environment.
    public static func start(environment: [String: String]) throws -> ProcessGroup {
        guard launcherVariables.contains(where: { environment[$0] != nil }) else { return .single }
        let library = environment[libraryVariable] ?? defaultLibrary
        var rank: Int32 = 0, size: Int32 = 0
        var err = [CChar](repeating: 0, count: 512)
        guard tc_mpi_start(library, &rank, &size, &err, err.count) == 0 else {
            throw DistributedError(
                reason: "started by an MPI launcher, but MPI cannot start: \(String(nulTerminated: err)) (install "
                    + "openmpi-bin, or set \(libraryVariable) to the MPI library)")
        }
        return ProcessGroup(rank: Int(rank), size: Int(size), usesMPI: true)
    }

    private func check(_ rc: Int32, _ err: [CChar]) throws {
        guard rc == 0 else { throw DistributedError(reason: "rank \(rank): " + String(nulTerminated: err)) }
    }

    /// Sums `buffer` over the ranks, in place.
    public func sum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
        guard usesMPI && size > 1, let base = buffer.baseAddress else { return }
        var err = [CChar](repeating: 0, count: 512)
        try check(tc_mpi_sum_floats(base, buffer.count, &err, err.count), err)
    }

    public func sum(_ buffer: UnsafeMutableBufferPointer<Double>) throws {
        guard usesMPI && size > 1, let base = buffer.baseAddress else { return }
        var err = [CChar](repeating: 0, count: 512)
        try check(tc_mpi_sum_doubles(base, buffer.count, &err, err.count), err)
    }

    /// A sum started on `count` floats at `data` (in place), completed by `wait()`; the memory must stay put
    /// until then.
    public final class PendingSum {
        var request: UnsafeMutableRawPointer?
        let rank: Int
        init(rank: Int) { self.rank = rank }

        /// Lets the sum progress; true once it is complete.
        public func progress() throws -> Bool {
            guard request != nil else { return true }
            var done: Int32 = 0
            var err = [CChar](repeating: 0, count: 512)
            guard tc_mpi_test(&request, &done, &err, err.count) == 0 else {
                throw DistributedError(reason: "rank \(rank): " + String(nulTerminated: err))
            }
            if done != 0 { request = nil }
            return done != 0
        }

        public func wait() throws {
            guard request != nil else { return }
            var err = [CChar](repeating: 0, count: 512)
            guard tc_mpi_wait(&request, &err, err.count) == 0 else {
                throw DistributedError(reason: "rank \(rank): " + String(nulTerminated: err))
            }
            request = nil
        }
    }

    /// Starts summing `count` floats at `data` over the ranks without waiting (MPI_Iallreduce).
    public func startSum(_ data: UnsafeMutablePointer<Float>, count: Int) throws -> PendingSum {
        let pending = PendingSum(rank: rank)
        guard usesMPI && size > 1 else { return pending }
        var err = [CChar](repeating: 0, count: 512)
        try check(tc_mpi_start_sum_floats(data, count, &pending.request, &err, err.count), err)
        return pending
    }

    /// The sums of `values` over the ranks.
    public func sum(_ values: [Double]) throws -> [Double] {
        var v = values
        try v.withUnsafeMutableBufferPointer { try sum($0) }
        return v
    }

    /// Rank `root`'s `buffer` on every rank.
    public func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, from root: Int = 0) throws {
        guard usesMPI && size > 1, let base = buffer.baseAddress else { return }
        var err = [CChar](repeating: 0, count: 512)
        try check(tc_mpi_broadcast_floats(base, buffer.count, Int32(root), &err, err.count), err)
    }

    /// Ends every process of the job (a fault one rank cannot recover from alone).
    public func abort(code: Int32) {
        if usesMPI { tc_mpi_abort(code) }
    }

    /// The variable bounding a blocking collective (seconds; default `defaultWait`).
    public static let waitVariable = "TESSERA_MPI_TIMEOUT"
    /// Long enough for a rank writing a large checkpoint or validating its share while the others wait.
    public static let defaultWait = 300.0

    /// Ends this process, saying `message`, when a blocking collective has waited `seconds`: no rank hangs for
    /// ever on one that died or hangs.
    public func bound(waits seconds: Double, message: String) throws {
        guard usesMPI && size > 1 else { return }
        var err = [CChar](repeating: 0, count: 512)
        try check(tc_mpi_watch(seconds, message, &err, err.count), err)
    }

    /// What this process says on standard error when the launcher ends it (SIGTERM after another rank failed).
    public func reportTermination(_ message: String) {
        tc_mpi_on_termination(message)
    }

    /// Shuts MPI down at the end of a run.
    public func finish() throws {
        guard usesMPI else { return }
        var err = [CChar](repeating: 0, count: 512)
        try check(tc_mpi_finish(&err, err.count), err)
    }
}

/// A collective that failed, or MPI that could not start.
public struct DistributedError: Error, CustomStringConvertible {
    public let reason: String
    public var description: String { reason }
}
